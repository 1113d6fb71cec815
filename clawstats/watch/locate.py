"""Which transcript a ``sessions.json`` row reads, and which names in a sessions directory are
transcripts (live, topic, ``.reset``/``.deleted`` archives): the file layout's naming rules,
shared by :class:`~clawstats.watch.file_agent.FileAgent` and the archives beside a SQLite store.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from clawstats.core.records import IndexRow

#: Usage-counted archives, as OpenClaw names them (artifacts.ts): ``<sid>.jsonl.<reset|deleted>.<ISO
#: stamp with - for :>Z`` with an optional ``.<32 hex>`` suffix and ``.zst``; older writers used an
#: epoch-ms stamp (ccusage and tokscale read those too) and ``.gz``.
ARCHIVE_RE = re.compile(
    r"^(?P<sid>.+?)\.jsonl\.(?P<why>reset|deleted)"
    r"\.(?:\d{4}-\d{2}-\d{2}T[0-9:\-]+(?:\.\d{1,3})?Z(?:\.[0-9a-f]{32})?|\d{10,16})"
    r"(?:\.(?:gz|zst))?$"
)


def is_live_transcript(name: str) -> bool:
    return (
        name.endswith(".jsonl")
        and not name.endswith(".trajectory.jsonl")
        and ".checkpoint." not in name
        and not name.startswith(".")
    )


def is_transcript_name(name: str) -> bool:
    return is_live_transcript(name) or ARCHIVE_RE.match(name) is not None


def locate(
    row: IndexRow,
    sessions_dir: str,
    present: Mapping[str, str],
    dirs: dict[str, bool] | None = None,
    probed: list[str] | None = None,
) -> str | None:
    """§2.3: the row's sessionFile if it exists, else its name or ``<sessionId>.jsonl`` here.

    ``present``: the listing's paths (each mapped to itself): a transcript found there is
    returned as the listing's own object. ``dirs`` (kept over one plan) remembers whether a
    directory other than ``sessions_dir`` exists (:func:`elsewhere`): a store copied from another
    machine names a sessionFile under a home directory that is not here in every row, and one stat
    of that directory answers for all of them. ``probed`` gets each file stat'ed (not in the listing
    ``present``): the plan looks at those rows again."""
    candidates: list[str] = []
    session_file = row.sessionFile
    if session_file:
        if os.path.isabs(session_file):
            listed = present.get(session_file)
            if listed is not None:
                # A live store's own path (OpenClaw writes it absolute), exactly as the listing
                # spells it: the row takes the listing's string, one object for row, plan and tail.
                row.sessionFile = listed
                return listed
            folder, name = os.path.split(session_file)
            if folder != sessions_dir and elsewhere(folder, sessions_dir, dirs):
                if probed is not None:
                    probed.append(session_file)
                if os.path.isfile(session_file):
                    return session_file
            candidates.append(name)
        else:
            candidates.append(session_file)
    if row.sessionId:
        candidates.append(f"{row.sessionId}.jsonl")
    for name in candidates:
        if os.sep not in name:
            listed = present.get(os.path.join(sessions_dir, name))
            if listed is not None:
                return listed
        else:
            if probed is not None:
                probed.append(name)
            if os.path.isfile(os.path.join(sessions_dir, name)):
                return os.path.join(sessions_dir, name)
    return None


def elsewhere(folder: str, sessions_dir: str, dirs: dict[str, bool] | None = None) -> bool:
    """Whether ``folder`` is an existing directory other than ``sessions_dir`` (remembered in
    ``dirs``). Another spelling of the sessions directory is not: a state dir given as a relative
    path or through a symlink while the rows name their transcripts by the gateway's absolute
    path (every row read twice otherwise: by that path, and its listed file as an orphan)."""
    found = dirs.get(folder) if dirs is not None else None
    if found is None:
        found = _elsewhere(folder, sessions_dir)
        if dirs is not None:
            dirs[folder] = found
    return found


def _elsewhere(folder: str, sessions_dir: str) -> bool:
    if not os.path.isdir(folder):  # most often so (rows copied from another machine): one stat
        return False
    try:
        there, here = os.stat(folder), os.stat(sessions_dir)
    except OSError:
        return True
    return (there.st_dev, there.st_ino) != (here.st_dev, here.st_ino)


def classify(sessions_dir: str, names: frozenset[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """({live transcript name: path}, [(archived sessionId, path)])."""
    here = os.path.join(sessions_dir, "")  # + a listed name (no separator): os.path.join's result
    return _classified((name, here + name) for name in sorted(names))


def classify_paths(sessions_dir: str, paths: Mapping[str, str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """:func:`classify` of a listing's paths (all in ``sessions_dir``), each given as its object."""
    start = len(os.path.join(sessions_dir, ""))
    return _classified((path[start:], path) for path in sorted(paths))  # (a common prefix: the names' order)


def _classified(listed: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    live: dict[str, str] = {}
    archives: list[tuple[str, str]] = []
    for name, path in listed:
        if is_live_transcript(name):  # never an archive name too: those end in a stamp, .gz or .zst
            live[name] = path
            continue
        match = ARCHIVE_RE.match(name)
        if match:
            archives.append((match.group("sid"), path))
    return live, archives
