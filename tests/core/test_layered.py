"""``Layered``: the snapshot mapping that shares all but the latest change with its parent."""

from __future__ import annotations

from clawstats.core.layered import MAX_DEPTH, Layered


def test_layers_read_like_the_dict_they_stand_for() -> None:
    expected = {f"k{i}": i for i in range(10)}
    mapping = Layered.of(expected)
    for step in range(3 * MAX_DEPTH):  # past several flattenings
        changed = {f"k{step % 13}": 100 + step, f"new{step}": step}
        removed = {f"k{(step + 5) % 13}"} - changed.keys()
        previous, before = mapping, dict(expected)
        mapping = mapping.updated(changed, removed)
        expected.update(changed)
        for key in removed:
            expected.pop(key, None)
        assert dict(mapping) == expected and len(mapping) == len(expected)
        assert dict(previous) == before  # the parent is unchanged: readers of it see their snapshot
        assert all(mapping[k] == v for k, v in expected.items()) and "absent" not in mapping
        # get (its own walk, no KeyError raised): a removed key in a newer layer is gone
        assert all(mapping.get(k) == v for k, v in expected.items()) and mapping.get("absent", -1) == -1
        assert all(mapping.get(k, -1) == -1 for k in removed)
