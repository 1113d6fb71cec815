"""Where the data is: the state dir, its agents and their layout, and the config files.

State dir: ``--state-dir`` > ``CLAWSTATS_STATE_DIR`` > ``OPENCLAW_STATE_DIR`` > ``~/.openclaw`` >
legacy ``~/.clawdbot`` (home = ``OPENCLAW_HOME`` > ``HOME``). Per agent the *layout* is
``sqlite`` when ``agents/<id>/agent/openclaw-agent.sqlite`` exists (OpenClaw >= 2026.8; a
leftover ``sessions.json`` is then a frozen legacy import input) and ``file`` otherwise.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clawstats.core.catalog import Catalog, PriceFallback, catalog_from_config

SQLITE_NAME = "openclaw-agent.sqlite"


class StateDirError(Exception):
    """No usable state dir (or a config file named but missing); one sentence for stderr."""


#: Config files are small; a bigger one is not a config (and is not read whole into memory).
MAX_CONFIG_BYTES = 16 << 20


class NotRegularFile(OSError):
    """A FIFO, socket, device or directory where a file was expected: never opened for reading."""


def read_regular(path: str, limit: int, whole: bool = True) -> bytes:
    """The first ``limit`` bytes of a regular file, read without blocking; with ``whole`` a bigger
    file is an error (``EFBIG``) rather than cut.

    ``O_NONBLOCK`` makes opening a FIFO return at once (a plain open would wait for a writer
    forever); the fstat of the open file then refuses anything but a regular file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file", path)
        if whole and st.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", path)
        return fh.read(limit + 1)[:limit]


def list_regular(directory: str) -> tuple[list[str], list[str]]:
    """(names of the regular files in ``directory``, names of other entries that look like files).

    Symlinks are followed; a dangling or looping one, a FIFO, a socket or a directory is not a
    file to read. ``d_type`` from the listing answers for plain entries without a ``stat``.
    """
    regular: list[str] = []
    other: list[str] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                is_file = entry.is_file()
            except OSError:  # a symlink loop, a vanished target
                is_file = False
            (regular if is_file else other).append(entry.name)
    return regular, other


@dataclass(frozen=True, slots=True)
class AgentSource:
    agent_id: str
    layout: str  # "file" | "sqlite"
    store: str  # sessions.json path, or the SQLite database path
    sessions_dir: str  # where transcripts live (file layout)


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("OPENCLAW_HOME") or env.get("HOME") or env.get("USERPROFILE")
    return _absolute(Path(home).expanduser() if home else Path.home())


def _absolute(path: Path) -> Path:
    """``path`` made absolute, its symlinks kept (as OpenClaw's ``path.resolve`` spells its own).
    The file-system events name absolute paths: a state dir kept relative named its transcripts
    otherwise, no event matched them and every append waited for the safety sweep (~1 s)."""
    return Path(os.path.abspath(path))


#: OpenClaw's state dir names: the current one, then the legacy ones it still falls back to
#: (``.clawdbot``), then those of older releases that ccusage also knows.
STATE_DIR_NAME = ".openclaw"
LEGACY_STATE_DIR_NAMES = (".clawdbot", ".moltbot", ".moldbot")
_PROFILE_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def resolve_state_dir(
    given: str | None, env: Mapping[str, str], source: str = "--state-dir", must_exist: bool = True
) -> Path:
    """The state dir to read, or :class:`StateDirError` naming what was tried."""
    return choose_state_dir(given, env, source, must_exist)[0]


def choose_state_dir(
    given: str | None, env: Mapping[str, str], source: str = "--state-dir", must_exist: bool = True
) -> tuple[Path, str]:
    """(state dir, why it was chosen).

    ``must_exist=False`` (``serve``): a state dir that does not exist yet is returned (the named
    one, else ``~/.openclaw``) so the server can wait for OpenClaw to create it.

    ``given`` is the setting (``--state-dir`` or ``CLAWSTATS_STATE_DIR``, resolved by
    :mod:`clawstats.settings`; ``source`` names which); then OpenClaw's own rules:
    ``OPENCLAW_STATE_DIR``, ``OPENCLAW_PROFILE`` (``~/.openclaw-<profile>``, "default" meaning
    none), ``~/.openclaw`` when it exists, else the first legacy dir that exists. ``~`` is
    ``OPENCLAW_HOME``, else ``HOME``.
    """
    home = _home(env)
    for name, value in (
        (source, given),
        ("OPENCLAW_STATE_DIR", env.get("OPENCLAW_STATE_DIR")),
    ):
        if value and value.strip():
            raw = value.strip()
            path = home / raw[2:] if raw == "~" or raw.startswith("~/") else _absolute(Path(raw).expanduser())
            if must_exist and not path.is_dir():
                raise StateDirError(
                    f'state dir "{path}" (from {name}) does not exist or is not a directory '
                    "(set --state-dir or CLAWSTATS_STATE_DIR to an OpenClaw state dir)"
                )
            return path, f"from {name}"
    profile = (env.get("OPENCLAW_PROFILE") or "").strip()
    if profile and profile.lower() != "default":
        if not _PROFILE_RE.match(profile):
            raise StateDirError(f'OPENCLAW_PROFILE "{profile}" is not a profile name (letters, digits, _ and -)')
        path = home / f"{STATE_DIR_NAME}-{profile}"
        if must_exist and not path.is_dir():
            raise StateDirError(f'state dir "{path}" (from OPENCLAW_PROFILE={profile}) does not exist')
        return path, f"from OPENCLAW_PROFILE={profile}"
    tried = [home / STATE_DIR_NAME, *(home / name for name in LEGACY_STATE_DIR_NAMES)]
    for index, path in enumerate(tried):
        if path.is_dir():
            return path, "the default" if index == 0 else f"legacy dir, {tried[0]} does not exist"
    if not must_exist:
        return tried[0], "the default, not created yet"
    names = ", ".join(f'"{p}"' for p in tried)
    raise StateDirError(
        f"no OpenClaw state dir found (tried {names}); "
        "set --state-dir or CLAWSTATS_STATE_DIR (or OPENCLAW_STATE_DIR) to one"
    )


def config_path(state_dir: Path, env: Mapping[str, str]) -> Path:
    """Where OpenClaw's config is: ``OPENCLAW_CONFIG_PATH``, else ``openclaw.json`` in the state dir."""
    return Path(env.get("OPENCLAW_CONFIG_PATH") or state_dir / "openclaw.json").expanduser()


def load_config(state_dir: Path, env: Mapping[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    """(``openclaw.json`` as a dict, or None; an error sentence when it exists but is unusable)."""
    explicit = env.get("OPENCLAW_CONFIG_PATH")
    path = config_path(state_dir, env)
    try:
        text = read_regular(str(path), MAX_CONFIG_BYTES).decode("utf-8")
    except FileNotFoundError:
        if explicit:  # asked for by name: ignoring it silently would read with the wrong windows
            raise StateDirError(f'config file "{path}" (from OPENCLAW_CONFIG_PATH) does not exist') from None
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read {path}: {exc}"
    import json5  # only with a config to read (~5 ms of imports a one-shot CLI need not pay)

    try:
        doc = json5.loads(text)
    except ValueError as exc:
        return None, f"cannot parse {path} as JSON5: {exc}"
    except RecursionError:  # json5 parses by recursion: a document nested past the limit
        return None, f"cannot parse {path} as JSON5: nested too deeply"
    return (doc if isinstance(doc, dict) else None), None


def _store_template(config: Mapping[str, Any] | None) -> str | None:
    session = config.get("session") if isinstance(config, Mapping) else None
    store = session.get("store") if isinstance(session, Mapping) else None
    return store if isinstance(store, str) and store.strip() else None


def _exists(path: Path, is_kind: Callable[[int], bool]) -> bool:
    """``path.is_file()``/``is_dir()`` that also answers False for a path it may not look at:
    pathlib raises PermissionError there, and an unreadable dir is a condition, not a crash."""
    try:
        return is_kind(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def discover_agents(state_dir: Path, config: Mapping[str, Any] | None, agent: str | None) -> list[AgentSource]:
    """Every agent with a session store, sorted by id; ``agent`` filters to one."""
    found: dict[str, AgentSource] = {}
    template = _store_template(config)
    if template is not None:
        expanded = os.path.expanduser(template)
        if not os.path.isabs(expanded):
            expanded = str(state_dir / expanded)
        if "{agentId}" in expanded:
            prefix, _, suffix = expanded.partition("{agentId}")
            for match in sorted(glob.glob(glob.escape(prefix) + "*" + glob.escape(suffix))):
                agent_id = match[len(prefix) : len(match) - len(suffix)]
                if agent_id and "/" not in agent_id:
                    found[agent_id] = AgentSource(agent_id, "file", match, os.path.dirname(match))
        elif os.path.exists(expanded):
            found["main"] = AgentSource("main", "file", expanded, os.path.dirname(expanded))
    agents_dir = state_dir / "agents"
    try:
        entries = sorted(agents_dir.iterdir()) if _exists(agents_dir, stat.S_ISDIR) else []
    except OSError:  # unreadable: the store reports it as a condition (degraded), no agents here
        entries = []
    for entry in entries:
        sessions = entry / "sessions"
        database = entry / "agent" / SQLITE_NAME
        if _exists(database, stat.S_ISREG):
            found[entry.name] = AgentSource(entry.name, "sqlite", str(database), str(sessions))
        elif entry.name not in found and _exists(sessions / "sessions.json", stat.S_ISREG):
            found[entry.name] = AgentSource(entry.name, "file", str(sessions / "sessions.json"), str(sessions))
        elif entry.name not in found and _exists(sessions, stat.S_ISDIR):
            # transcripts but no index yet: still counted (rows come from transcripts)
            found[entry.name] = AgentSource(entry.name, "file", str(sessions / "sessions.json"), str(sessions))
    agents = [found[name] for name in sorted(found)]
    return [a for a in agents if agent is None or a.agent_id == agent]


def load_catalog(
    state_dir: Path,
    config: Mapping[str, Any] | None,
    agent_ids: list[str],
    fallback_price: PriceFallback | None,
    fallback_id: str = "",
) -> Catalog:
    """Catalog from the config and each agent's ``agent/models.json`` (when readable)."""
    agent_models: dict[str, Any] = {}
    for agent_id in agent_ids:
        path = state_dir / "agents" / agent_id / "agent" / "models.json"
        try:
            text = read_regular(str(path), MAX_CONFIG_BYTES).decode("utf-8")
            import json5  # (see load_config)

            agent_models[agent_id] = json5.loads(text)
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):
            continue
    return catalog_from_config(config, agent_models, fallback_price, fallback_id)
