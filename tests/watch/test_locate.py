"""Which transcript a ``sessions.json`` row reads when the state dir is spelt otherwise than the
gateway spells it in the rows' ``sessionFile`` (a relative path, a symlink)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import SMALL_STATE, make_store


def _as_the_gateway_writes_it(state: Path) -> int:
    """Each row's sessionFile as the gateway writes it: its transcript's absolute path here."""
    named = 0
    for index in state.glob("agents/*/sessions/sessions.json"):
        rows = json.loads(index.read_text())
        for row in rows.values():
            if row.get("sessionFile") and (index.parent / os.path.basename(row["sessionFile"])).exists():
                row["sessionFile"] = str(index.parent / os.path.basename(row["sessionFile"]))
                named += 1
        index.write_text(json.dumps(rows))
    return named


def _answer(state_dir: Path) -> tuple[list[str], float]:
    snapshot = make_store(state_dir).scan()
    return sorted(snapshot.by_key), snapshot.totals.total_cost


@pytest.mark.parametrize("spelling", ["relative", "symlink", "dotted"])
def test_a_state_dir_spelt_otherwise_reads_each_transcript_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    state = tmp_path / "state"
    shutil.copytree(SMALL_STATE, state)
    assert _as_the_gateway_writes_it(state) >= 5
    keys, cost = _answer(state)
    if spelling == "relative":
        monkeypatch.chdir(tmp_path)
        other = Path("state")
    elif spelling == "symlink":
        other = tmp_path / "link"
        other.symlink_to(state)
    else:
        (tmp_path / "sub").mkdir()
        other = tmp_path / "sub" / ".." / "state"
    # each transcript read once, by its row: no second row of the same file as an orphan
    assert _answer(other) == (keys, cost)
