"""``Layered``: an immutable mapping that shares all but the latest changes with its parent.

Each snapshot of 50,000 rows needs its own frozen key -> row mapping; copying the whole dict
per change costs milliseconds (a dict with deletions is copied entry by entry). A ``Layered``
holds only the keys changed since its parent and looks the rest up there; every
``MAX_DEPTH`` layers it is flattened into one dict, so a lookup walks a bounded chain and the
copy is paid once per ``MAX_DEPTH`` changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar, cast

V = TypeVar("V")
MAX_DEPTH = 32
_GONE: object = object()


class Layered(Mapping[str, V], Generic[V]):
    __slots__ = ("_layer", "_parent", "_depth", "_len")

    def __init__(self, layer: dict[str, V | object], parent: Layered[V] | None, size: int) -> None:
        self._layer = layer
        self._parent = parent
        self._depth: int = 0 if parent is None else parent.depth + 1
        self._len = size

    @property
    def depth(self) -> int:
        return self._depth

    @classmethod
    def of(cls, items: dict[str, V]) -> Layered[V]:
        return cls(dict(items), None, len(items))

    def updated(self, changed: Mapping[str, V], removed: set[str] | frozenset[str]) -> Layered[V]:
        """A new mapping: this one with ``changed`` set and ``removed`` gone."""
        if self._depth + 1 >= MAX_DEPTH:
            flat = self._flat()
            flat.update(changed)
            for key in removed:
                flat.pop(key, None)
            return Layered(flat, None, len(flat))
        size = self._len
        layer: dict[str, V | object] = {}
        for key, value in changed.items():
            if key not in self:
                size += 1
            layer[key] = value
        for key in removed:
            if key in self:
                size -= 1
            layer[key] = _GONE
        return Layered(layer, self, size)

    def _flat(self) -> dict[str, V | object]:
        """One dict of the whole chain: the root's copied, each newer layer applied in C."""
        chain: list[Layered[V]] = []
        node: Layered[V] | None = self
        while node is not None:
            chain.append(node)
            node = node._parent
        flat = dict(chain[-1]._layer)
        for layer in reversed(chain[:-1]):
            flat.update(layer._layer)
        for key in [k for layer in chain[:-1] for k, v in layer._layer.items() if v is _GONE]:
            if flat.get(key) is _GONE:
                del flat[key]
        return flat

    def __getitem__(self, key: str) -> V:
        node: Layered[V] | None = self
        while node is not None:
            value = node._layer.get(key, node)
            if value is not node:
                if value is _GONE:
                    raise KeyError(key)
                return cast(V, value)
            node = node._parent
        raise KeyError(key)

    def get(self, key: str, default: V | None = None) -> V | None:  # type: ignore[override]
        """(``__getitem__`` without a KeyError raised and caught: a walk of every row's view.)"""
        node: Layered[V] | None = self
        while node is not None:
            value = node._layer.get(key, node)
            if value is not node:
                return default if value is _GONE else cast(V, value)
            node = node._parent
        return default

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        if self._parent is None:  # one layer: its keys (no set of every key seen)
            return (key for key, value in self._layer.items() if value is not _GONE)
        return self._chained()

    def _chained(self) -> Iterator[str]:
        chain: list[Layered[V]] = []
        node: Layered[V] | None = self
        while node is not None:
            chain.append(node)
            node = node._parent
        seen: set[str] = set()
        for layer in chain:  # newest layer first: its value (or removal) wins
            for key, value in layer._layer.items():
                if key not in seen:
                    seen.add(key)
                    if value is not _GONE:
                        yield key
