"""Text from the store printed by the CLI is made safe for a terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clawstats.cli import main

HOSTILE = "\x1b[31mred\x1b]0;pwned\x07 two\nlines\r\u202eevil\x9b2J"


def test_labels_cannot_drive_the_terminal(small_state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = small_state / "agents/main/sessions/sessions.json"
    rows = json.loads(index.read_text())
    rows["agent:main:main"]["label"] = HOSTILE
    index.write_text(json.dumps(rows))
    assert main(["sessions", "--state-dir", str(small_state), "--no-cache"]) == 0
    out = capsys.readouterr().out
    for char in ("\x1b", "\x07", "\r", "\u202e", "\x9b"):
        assert char not in out
    table = out.split("\n\n")[0].splitlines()
    assert len(table) == 1 + 9  # header + one line per session: the newline did not break a row
    assert any("\\x1b[31mred" in line and "agent:main:main" in line for line in table)
    # JSON keeps the value exactly (it is escaped by JSON itself).
    assert main(["sessions", "--state-dir", str(small_state), "--no-cache", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert next(r for r in body["sessions"] if r["key"] == "agent:main:main")["label"] == HOSTILE
