"""The last answer of a one-shot command (``sessions``, ``check``), kept beside the persisted index
with the identity of every input it was computed from.

A monitor that runs ``clawstats sessions --json`` every minute over 50,000 idle sessions asks the
same question of the same files again and again. Before building anything, the CLI stats what the
last answer was read from: every entry of each agent's ``sessions/`` and database directory
(transcripts, archives, ``sessions.json``, the database and its ``-wal``, ``models.json``), the
directories that new agents or files would change, the config file and any transcript read from
elsewhere. When every identity (inode, size, mtime, ctime) is the same, the rows, totals and health
are the last answer's; one input that differs sends the CLI to the full read, which saves a new
answer. The cost of a hit is one ``stat`` per file and one decode (0.6 s at 50,000 sessions).

An answer is saved only when no input was modified within :data:`RACY_S` of the start of the read
that produced it: a file written in the same timestamp tick as it was read (or during the read)
could change again without its identity moving (git's "racy clean" rule). So while a gateway is
writing, its agent's answers are not reused; that is the full read's job. ``-shm`` files are not
inputs: a reader's lock marks change them, and every commit moves the ``-wal`` anyway (its ctime
is not compared: a reader run as root moves it). An answer
whose health is degraded is never saved: a condition must be looked at again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import msgspec

from clawstats import __version__
from clawstats.core.health import Health
from clawstats.core.session import SessionRow
from clawstats.core.totals import Totals
from clawstats.watch.layout import SQLITE_NAME, AgentSource

log = logging.getLogger("clawstats")

#: An input modified this close to (or after) the start of the read makes its answer unsaved.
RACY_S = 2.0
#: Answers kept per state dir (one per settings, price data and version): the newest saved. An
#: upgrade or another ``--agent`` leaves one behind each time, ~50 MB at 50,000 sessions.
KEEP_ANSWERS = 4
#: A temporary file of a save this old was left by a writer that died (a save takes seconds).
STALE_TMP_S = 600.0
_FORMAT = 1  # the saved layout; another one is ignored (and replaced)

Identity = tuple[int, int, int, int] | None  # (inode, size, mtime_ns, ctime_ns); None: absent


class Answer(msgspec.Struct, frozen=True):
    """What ``sessions`` and ``check`` print from: rows newest first, totals and health."""

    rows: list[SessionRow]
    totals: Totals
    health: Health


class Inputs(msgspec.Struct, frozen=True, array_like=True):
    """Where an answer came from: directories listed whole, directories and files stat'ed alone
    (``read``: files the answer was read from, which must exist when it is saved; ``optional``:
    files whose appearance would change it: the config, each agent's ``models.json`` and
    database, a row's ``sessionFile`` elsewhere), and the agents discovery found."""

    listed: list[str]
    dirs: list[str]
    read: list[str]
    optional: list[str]
    agents: list[tuple[str, str, str, str]]

    @classmethod
    def of(
        cls,
        state_dir: Path,
        config_path: Path,
        agents: list[AgentSource],
        read_paths: list[str],
        named_paths: list[str],
    ) -> Inputs:
        """The inputs of a read of these agents. ``read_paths``: every transcript read (one
        outside the listed directories is stat'ed alone); ``named_paths``: files the index names
        outside them (an absolute ``sessionFile``), read or not."""
        listed = sorted({os.path.abspath(p) for a in agents for p in (a.sessions_dir, os.path.dirname(a.store))})
        dirs = {str(state_dir), str(state_dir / "agents")}
        for directory in listed:  # a new agent, or a new sessions/ or agent/ in an agent dir
            parent = os.path.dirname(directory)
            dirs.update((parent, os.path.dirname(parent)))
        agent_dirs = {str(state_dir / "agents" / a.agent_id) for a in agents}
        try:
            agent_dirs.update(e.path for e in os.scandir(state_dir / "agents") if e.is_dir())
        except OSError:
            pass
        dirs.update(agent_dirs)
        optional = {str(config_path)}
        for agent_dir in agent_dirs:  # read by the catalog and by discovery, whatever the layout
            optional.update(
                os.path.join(agent_dir, "agent", n) for n in ("models.json", SQLITE_NAME, SQLITE_NAME + "-wal")
            )
        inside = {*listed, *(p for a in agents for p in (a.sessions_dir, os.path.dirname(a.store)))}
        inside_ids = {ident for p in listed if (ident := _dir_id(p)) is not None}
        outside: dict[str, bool] = {}  # per directory a path names: one stat of each

        def elsewhere(path: str) -> bool:
            # the common case (a path joined to its listed dir) without abspath: 52,000 of them
            folder = path.rpartition(os.sep)[0]
            if folder in inside:
                return False
            found = outside.get(folder)
            if found is None:
                # Another spelling of a listed directory (the state dir given through a symlink or
                # as a relative path, the rows naming the gateway's absolute paths) is that
                # directory: its files are listed, not an input each (52,000 stats a warm run).
                here = os.path.dirname(os.path.abspath(path))
                ident = _dir_id(here) if here not in inside else None
                found = outside[folder] = here not in inside and (ident is None or ident not in inside_ids)
            return found

        read = {p for p in read_paths if elsewhere(p)}
        optional.update(p for p in named_paths if elsewhere(p))
        return cls(
            listed,
            sorted(dirs - set(listed)),
            sorted(read),
            sorted(optional - read),
            [(a.agent_id, a.layout, a.store, a.sessions_dir) for a in agents],
        )

    def identities(self, known: dict[str, Identity] | None = None) -> dict[str, Identity]:
        """The identity of every input (one ``stat`` each); ``known``: identities taken earlier,
        used as they are (a directory is listed again all the same, so a new file is seen)."""
        known = known or {}
        found: dict[str, Identity] = {}
        for directory in self.listed:
            found[directory] = known[directory] if directory in known else _identity(directory)
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if not entry.name.endswith("-shm"):
                            path = entry.path
                            found[path] = known[path] if path in known else _identity(path)
            except OSError:
                pass  # absent or unreadable: its own identity says so
        for path in (*self.dirs, *self.read, *self.optional):
            found[path] = known[path] if path in known else _identity(path)
        return found


class _Head(msgspec.Struct, frozen=True, array_like=True):
    format: int
    key: str
    inputs: Inputs
    identities: dict[str, Identity]


def _dir_id(path: str) -> tuple[int, int] | None:
    """A directory's (device, inode), None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _identity(path: str) -> Identity:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if path.endswith("-wal"):
        # Not its ctime: a reader run as root (a container's default) moves it at every open
        # (SQLite hands the -wal the database's owner), so no answer was ever saved beside a
        # gateway's open database; every commit moves its mtime and size.
        return st.st_ino, st.st_size, st.st_mtime_ns, 0
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class AnswerFile:
    """One state dir's last answer, for one set of settings (``key``) in the cache dir."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key
        # The identities the last load() took, before the read that follows a miss: the save
        # uses them instead of a second stat of every input. Older than the read, never newer:
        # a file that changed meanwhile is saved with its earlier identity, so the next check
        # sees a change and reads again (a wasted read at worst, never a stale answer).
        self.seen: dict[str, Identity] = {}

    @classmethod
    def beside(cls, index_path: Path, key_parts: tuple[object, ...]) -> AnswerFile:
        """The answer file beside the index cache ``index_path``; ``key_parts`` name everything
        besides the inputs that shapes an answer (settings, price data)."""
        key = hashlib.sha256(repr((__version__, *key_parts)).encode()).hexdigest()[:16]
        # one file per settings: `sessions` and `sessions --agent ops` keep their own answers
        return cls(index_path.with_name(f"{index_path.stem.replace('index-', 'answer-')}-{key}.msgpack"), key)

    def load(self, discover: Callable[[], list[AgentSource]]) -> Answer | None:
        """The saved answer if every input is unchanged and ``discover`` finds the same agents
        (a store template, ``~``), else None (nothing saved, other settings, another format, or a
        changed input)."""
        try:
            blob = self.path.read_bytes()
            head_size = int.from_bytes(blob[:8], "little")
            head = msgspec.msgpack.decode(blob[8 : 8 + head_size], type=_Head)
        except (OSError, ValueError, msgspec.DecodeError):
            return None
        if head.format != _FORMAT or head.key != self.key:
            return None
        now = self.seen = head.inputs.identities()
        if now == head.identities and [(a.agent_id, a.layout, a.store, a.sessions_dir) for a in discover()] != [
            tuple(a) for a in head.inputs.agents
        ]:
            log.info("last answer not reused: the agents found changed")
            return None
        if now != head.identities:
            changed = sum(1 for p in now.keys() | head.identities.keys() if now.get(p) != head.identities.get(p))
            log.info("last answer not reused: %d input(s) changed", changed)
            return None
        try:
            answer = msgspec.msgpack.decode(memoryview(blob)[8 + head_size :], type=Answer)
        except (ValueError, msgspec.DecodeError):
            return None
        log.info("answered from the last answer: %d inputs unchanged", len(now))
        return answer

    def save(self, answer: Answer, inputs: Inputs, started_ns: int) -> bool:
        """Persist ``answer`` of a read started at ``started_ns`` (wall clock); False when it must
        not be reused (a racy input, degraded health) or cannot be written (no error: the cache
        is an optimisation, the CLI already reports an unusable cache dir)."""
        if answer.health.conditions:
            return False
        identities = inputs.identities(self.seen)
        racy_ns = started_ns - int(RACY_S * 1e9)
        # ctime too: a file rewritten with its old mtime kept (cp -p, rsync -t, a restore)
        if any(ident is not None and max(ident[2], ident[3]) >= racy_ns for ident in identities.values()):
            log.info("answer not saved: an input was modified during or just before the read")
            self._remove()
            return False
        if any(identities[p] is None for p in inputs.read):  # read, then gone: nothing to compare later
            log.info("answer not saved: a file it was read from is gone")
            self._remove()
            return False
        head = msgspec.msgpack.encode(_Head(_FORMAT, self.key, inputs, identities))
        body = msgspec.msgpack.encode(answer)
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(len(head).to_bytes(8, "little"))
                fh.write(head)
                fh.write(body)
            os.replace(tmp, self.path)  # readers see the old answer or the new one, never half
        except OSError as exc:
            log.info("answer not saved: %s", exc)
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            return False
        self._prune()
        return True

    def _prune(self) -> None:
        """Keep the :data:`KEEP_ANSWERS` newest answers of this state dir (by the time each was
        saved), and no temporary file of a writer that died."""
        prefix = self.path.name[: -len(f"-{self.key}.msgpack")]
        answers: list[tuple[int, Path]] = []
        now_ns = time.time_ns()
        try:
            with os.scandir(self.path.parent) as entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith(prefix + "-") and name.endswith(".msgpack"):
                        answers.append((entry.stat().st_mtime_ns, Path(entry.path)))
                    elif name.startswith(f".{prefix}-") and name.endswith(".tmp"):
                        if now_ns - entry.stat().st_mtime_ns > STALE_TMP_S * 1e9:
                            os.unlink(entry.path)
            answers.sort(reverse=True)
            for _mtime, path in answers[KEEP_ANSWERS:]:
                if path != self.path:
                    path.unlink()
        except OSError as exc:  # another CLI pruning at the same time, a read-only cache dir
            log.info("old answers not pruned: %s", exc)

    def _remove(self) -> None:
        try:
            self.path.unlink()
        except OSError:
            pass


def fresh_health(health: Health, started: float) -> Health:
    """A reused answer's health, with this run's scan time."""
    return replace(health, last_scan_ms=time.time() * 1000.0, last_scan_s=time.perf_counter() - started)
