"""The CLI's last answer (``clawstats.watch.answers``): reused only when no input changed.

Each case runs ``clawstats sessions --json`` on a real store with a cache dir, changes one thing
the way a writer (or an operator) would, and runs it again: the output must equal a full read
(``--no-cache``) of the same files, and the log says whether the last answer was reused. The
stores' files are aged first: an input modified within 2 s of a read is never trusted.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from clawstats.cli import main
from clawstats.watch import answers
from tests.conftest import OPS_TRANSCRIPT
from tests.core.lines import append_events, current_session_id, live_call, sqlite_path, writer

HIT = "answered from the last answer"
DAY_S = 86_400


#: The racy window in these tests: the copies' ctimes (set by the copy and by ``_age``, which
#: cannot move them back) must be this old before an answer is saved.
RACY_S = 0.3


@pytest.fixture(autouse=True)
def short_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answers, "RACY_S", RACY_S)


def _age(root: Path, seconds: float = DAY_S) -> None:
    """Every file and directory under ``root`` last modified ``seconds`` ago; then wait out the
    racy window for their ctimes (which ``utime`` sets to now)."""
    then = time.time() - seconds
    for path in [root, *root.rglob("*")]:
        os.utime(path, (then, then))
    time.sleep(RACY_S + 0.05)


class Cli:
    """``clawstats sessions --json`` in-process, with this test's cache dir."""

    def __init__(self, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, cache_dir: Path) -> None:
        self.capsys, self.caplog, self.cache_dir = capsys, caplog, cache_dir

    def run(self, state: Path, *args: str, cached: bool = True) -> tuple[dict[str, Any], bool]:
        """(the JSON body without its times, whether the last answer was reused)."""
        where = ("--cache-dir", str(self.cache_dir)) if cached else ()
        self.caplog.clear()
        with self.caplog.at_level(logging.INFO, logger="clawstats"):
            assert main(["sessions", "--state-dir", str(state), "--json", *where, *args]) == 0
        body = json.loads(self.capsys.readouterr().out)
        del body["generatedAt"], body["health"]["lastScanAt"], body["health"]["lastScanSeconds"]
        return body, HIT in self.caplog.text

    def full(self, state: Path) -> dict[str, Any]:
        """A full read (``--no-cache``)."""
        return self.run(state, "--no-cache", cached=False)[0]

    @property
    def log(self) -> str:
        return self.caplog.text


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, tmp_path: Path) -> Cli:
    return Cli(capsys, caplog, tmp_path / "cache")


@pytest.mark.parametrize("layout", ["file", "sqlite"])
def test_unchanged_inputs_reuse_the_answer_and_it_equals_a_full_read(
    layout: str,
    small_state: Path,
    sqlite_state: Path,
    cli: Cli,
) -> None:
    state = small_state if layout == "file" else sqlite_state
    _age(state)
    full = cli.full(state)
    first, first_hit = cli.run(state)
    second, second_hit = cli.run(state)
    assert (first_hit, second_hit) == (False, True)
    assert first == second == full
    assert len(full["sessions"]) >= 6
    # the query options apply to the reused answer as to a full read
    limited, hit = cli.run(state, "--sort", "cost", "--limit", "2")
    assert hit and limited["sessions"] == sorted(full["sessions"], key=lambda r: -(r["totalCost"] or 0))[:2]


def _append_line(state: Path) -> None:
    path = state / OPS_TRANSCRIPT
    then = path.stat().st_mtime
    with path.open("ab") as fh:
        fh.write(json.dumps(live_call("a1b2c3d4", 0.25)).encode() + b"\n")
    os.utime(path, (then, then))  # even a writer that kept the old mtime is seen (size)


def _rewrite_same_size(state: Path) -> None:
    path = state / OPS_TRANSCRIPT
    st = path.stat()
    data = path.read_bytes()
    cost = data.rindex(b'"total":')  # one digit of a recorded cost, same length, same mtime
    digit = cost + len(b'"total":') + 2
    path.write_bytes(data[:digit] + (b"9" if data[digit : digit + 1] != b"9" else b"8") + data[digit + 1 :])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # only the ctime tells


def _new_transcript(state: Path) -> None:
    src = state / OPS_TRANSCRIPT
    (src.parent / "11111111-2222-4333-8444-555555555555.jsonl").write_bytes(src.read_bytes())


def _delete_transcript(state: Path) -> None:
    (state / OPS_TRANSCRIPT).unlink()


def _replace_index(state: Path) -> None:
    index = state / "agents/ops/sessions/sessions.json"
    rows = json.loads(index.read_text())
    for row in rows.values():
        row["contextTokens"] = 64000
    tmp = index.with_name("sessions.json.1.abc.tmp")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, index)


CHANGES = {
    "append": _append_line,
    "new transcript": _new_transcript,
    "deleted transcript": _delete_transcript,
    "sessions.json replaced": _replace_index,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_changed_input_means_a_full_read(
    change: str,
    small_state: Path,
    cli: Cli,
) -> None:
    _age(small_state)
    before, _ = cli.run(small_state)
    assert cli.run(small_state)[1]
    CHANGES[change](small_state)
    after, hit = cli.run(small_state)
    full = cli.full(small_state)
    assert not hit
    assert after == full != before


@pytest.mark.parametrize("change", ["chmod", "rewrite"])
def test_a_new_ctime_alone_is_a_changed_input(
    change: str,
    small_state: Path,
    cli: Cli,
) -> None:
    """Same size, same mtime: only the ctime moved. (What the full read then makes of an in-place
    rewrite is the index's business: transcripts are append-only, see ``watch/tail.py``.)"""
    _age(small_state)
    cli.run(small_state)
    if change == "chmod":
        (small_state / OPS_TRANSCRIPT).chmod(0o600)
    else:
        _rewrite_same_size(small_state)
    assert not cli.run(small_state)[1]


def test_a_new_sqlite_event_means_a_full_read(sqlite_state: Path, cli: Cli) -> None:
    _age(sqlite_state)
    before, _ = cli.run(sqlite_state)
    with writer(sqlite_path(sqlite_state, "ops")) as db:
        append_events(db, current_session_id(db, "agent:ops:quick"), [live_call("a1b2c3d4", 0.25)])
    db.close()
    after, hit = cli.run(sqlite_state)
    assert not hit and after != before
    assert after == cli.full(sqlite_state)


def test_a_wal_whose_ctime_alone_moved_keeps_the_answer(sqlite_state: Path, cli: Cli) -> None:
    """A gateway keeps its database open (a ``-wal`` beside it), and a reader run as root moves the
    ``-wal``'s ctime at every open (SQLite gives it the database's owner): compared, no answer was
    ever saved. A commit moves its mtime and size, which are still compared."""
    wal = sqlite_path(sqlite_state, "ops").with_name("openclaw-agent.sqlite-wal")
    wal.write_bytes(b"")
    _age(sqlite_state)
    cli.run(sqlite_state)  # its -shm made (a gateway's is there): the directory moved, not saved
    time.sleep(RACY_S + 0.05)
    assert not cli.run(sqlite_state)[1]  # saved
    wal.chmod(wal.stat().st_mode)  # its ctime alone moves, as at a root reader's open
    time.sleep(RACY_S + 0.05)
    assert cli.run(sqlite_state)[1]
    wal.chmod(wal.stat().st_mode)  # just before the read: still no reason not to save
    assert cli.run(sqlite_state)[1]
    with writer(sqlite_path(sqlite_state, "ops")) as db:
        append_events(db, current_session_id(db, "agent:ops:quick"), [live_call("a1b2c3d4", 0.25)])
    db.close()
    assert not cli.run(sqlite_state)[1]


def test_a_new_agent_means_a_full_read(small_state: Path, cli: Cli) -> None:
    _age(small_state)
    before, _ = cli.run(small_state)
    sessions = small_state / "agents/newbie/sessions"
    sessions.mkdir(parents=True)
    (sessions / "11111111-2222-4333-8444-555555555555.jsonl").write_bytes((small_state / OPS_TRANSCRIPT).read_bytes())
    after, hit = cli.run(small_state)
    assert not hit and any(r["agentId"] == "newbie" for r in after["sessions"])
    assert len(after["sessions"]) == len(before["sessions"]) + 1


def test_inputs_written_during_or_just_before_the_read_are_not_trusted(small_state: Path, cli: Cli) -> None:
    _age(small_state)
    (small_state / OPS_TRANSCRIPT).touch()  # written a moment ago: it could change again in the same tick
    cli.run(small_state)
    assert "answer not saved" in cli.log
    assert not cli.run(small_state)[1]


def test_other_settings_and_no_cache_do_not_share_answers(small_state: Path, tmp_path: Path, cli: Cli) -> None:
    _age(small_state)
    everything, _ = cli.run(small_state)
    ops, hit = cli.run(small_state, "--agent", "ops")
    assert not hit and {r["agentId"] for r in ops["sessions"]} == {"ops"}
    assert {r["agentId"] for r in everything["sessions"]} != {"ops"}
    assert cli.run(small_state, "--agent", "ops")[1]
    assert cli.run(small_state)[1]
    cache_dir = tmp_path / "no-cache"
    cli.run(small_state, "--no-cache", "--cache-dir", str(cache_dir), cached=False)
    assert not cache_dir.exists()


def test_only_the_newest_answers_of_a_state_dir_are_kept(small_state: Path, cli: Cli) -> None:
    """Each version, price data and settings saves its own answer (~50 MB at 50,000 sessions):
    the oldest go, and so does a temporary file a dead writer left."""
    _age(small_state)
    limits = [str((64 << 20) + n) for n in range(answers.KEEP_ANSWERS + 2)]
    for limit in limits:
        assert not cli.run(small_state, "--max-line-bytes", limit)[1]
        if limit == limits[0]:
            (stale,) = cli.cache_dir.glob("answer-*.msgpack")
            dead = stale.with_name(f".{stale.name}.dead.tmp")
            dead.write_bytes(b"half")
            os.utime(dead, (time.time() - 2 * answers.STALE_TMP_S,) * 2)
            live = stale.with_name(f".{stale.name}.live.tmp")  # a save going on now
            live.write_bytes(b"half")
    assert len(list(cli.cache_dir.glob("answer-*.msgpack"))) == answers.KEEP_ANSWERS
    assert not dead.exists() and live.exists()
    assert not cli.run(small_state, "--max-line-bytes", limits[0])[1]  # the oldest went
    assert cli.run(small_state, "--max-line-bytes", limits[-1])[1]  # the newest stayed
    assert len(list(cli.cache_dir.glob("answer-*.msgpack"))) == answers.KEEP_ANSWERS


def test_check_uses_the_answer_too(small_state: Path, cli: Cli) -> None:
    _age(small_state)
    cached = ("--cache-dir", str(cli.cache_dir))
    outputs = []
    for _ in range(2):
        cli.caplog.clear()
        with cli.caplog.at_level(logging.INFO, logger="clawstats"):
            assert main(["check", "--state-dir", str(small_state), *cached, "--max-session-cost", "0.1"]) == 1
        outputs.append((cli.capsys.readouterr().out, HIT in cli.log))
    assert outputs[0][0] == outputs[1][0] and "session cost" in outputs[0][0]
    assert [hit for _, hit in outputs] == [False, True]


def test_a_file_rewritten_with_its_old_mtime_just_before_the_read_is_not_trusted(small_state: Path, cli: Cli) -> None:
    _age(small_state)
    _rewrite_same_size(small_state)  # mtime as before, ctime now (cp -p, rsync -t, a restore)
    cli.run(small_state)
    assert "answer not saved" in cli.log


def _models_json(state: Path) -> None:
    path = state / "agents/ops/agent/models.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    models = {"mock-small": {"contextWindow": 50000}}
    path.write_text(json.dumps({"providers": {"mock": {"models": [{"id": k, **v} for k, v in models.items()]}}}))


def _foreign_session_file(state: Path) -> None:
    """A row's sessionFile elsewhere that did not exist at the last read appears."""
    index = state / "agents/ops/sessions/sessions.json"
    rows = json.loads(index.read_text())
    elsewhere = state.parent / "elsewhere" / Path(OPS_TRANSCRIPT).name
    for row in rows.values():
        row["sessionFile"] = str(elsewhere)
    index.write_text(json.dumps(rows))


def _database_beside_a_file_agent(state: Path, sqlite_state: Path) -> None:
    src = sqlite_path(sqlite_state, "ops")
    dest = state / "agents/ops/agent" / src.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(src.read_bytes())


def _appear_elsewhere(state: Path) -> None:
    (state.parent / "elsewhere" / Path(OPS_TRANSCRIPT).name).write_bytes((state / OPS_TRANSCRIPT).read_bytes())


@pytest.mark.parametrize("change", ["models.json", "database", "sessionFile elsewhere"])
def test_what_the_catalog_and_discovery_read_are_inputs_too(
    change: str,
    small_state: Path,
    sqlite_state: Path,
    cli: Cli,
) -> None:
    """An agent's models.json (windows, prices), a database appearing in an agent dir, a
    sessionFile outside the sessions dir that appears after the read (found by review): none
    of them changes a listed directory."""
    (small_state / "agents/ops/agent").mkdir(exist_ok=True)
    (small_state.parent / "elsewhere").mkdir()
    _foreign_session_file(small_state)
    _age(small_state.parent)
    cli.run(small_state)
    assert cli.run(small_state)[1]
    if change == "models.json":
        _models_json(small_state)
    elif change == "database":
        _database_beside_a_file_agent(small_state, sqlite_state)
    else:
        _appear_elsewhere(small_state)
    after, hit = cli.run(small_state)
    assert not hit
    assert after == cli.full(small_state)


def test_a_store_read_through_a_symlink_adds_no_input_a_row(
    small_state: Path, cli: Cli, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Rows naming their transcripts by the gateway's absolute path, the state dir given through a
    symlink: each row's sessionFile is a listed file under another spelling, not an input of its
    own (one stat each in every warm run: 52,000 at 50k)."""
    real = small_state.resolve()
    for index in real.glob("agents/*/sessions/sessions.json"):
        rows = json.loads(index.read_text())
        for row in rows.values():
            row["sessionFile"] = str(index.parent / f"{row['sessionId']}.jsonl")
        index.write_text(json.dumps(rows))
    link = tmp_path / "link"
    link.symlink_to(real)
    _age(real)
    inputs: dict[Path, int] = {}
    for state, runner in ((real, cli), (link, Cli(capsys, caplog, tmp_path / "cache-link"))):
        runner.run(state)
        saved = next((runner.cache_dir).glob("answer-*.msgpack")).read_bytes()
        head = answers.msgspec.msgpack.decode(saved[8 : 8 + int.from_bytes(saved[:8], "little")], type=answers._Head)
        inputs[state] = len(head.identities)
        assert runner.run(state)[1]  # and reused
    assert inputs[link] == inputs[real]


def test_a_miss_stats_each_input_once_and_its_saved_answer_is_reused_next(
    small_state: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a miss the save uses the identities the check took before the read (a second stat of
    52,000 inputs was 0.3 s of a warm run at 50k), and the next run reuses that answer."""
    _age(small_state)
    cli.run(small_state)
    _append_line(small_state)
    time.sleep(RACY_S + 0.05)  # the append's ctime out of the racy window
    stats: list[str] = []
    identity = answers._identity

    def counted(path: str) -> answers.Identity:
        stats.append(path)
        return identity(path)

    monkeypatch.setattr(answers, "_identity", counted)
    after, hit = cli.run(small_state)
    assert not hit and stats and len(stats) == len(set(stats))  # each input once: check and save
    again, hit = cli.run(small_state)
    assert hit and again == after == cli.full(small_state)
