"""Every option, declared once: CLI flag, environment variable, default, help and validation.

``OPTIONS`` drives argparse (``--help`` shows each default and env var), the env fallbacks
(``CLAWSTATS_*``, consulted only for flags left unset), the :class:`Settings` defaults and the
README test. Flag and env values go through the same parser, so a bad value gets the same
sentence from either source (:class:`UsageError`, exit 2). Nothing reads ``os.environ`` for
these after :func:`resolve`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import platformdirs

from clawstats.core.alerts import AlertConfigError, AlertRules, validate
from clawstats.core.records import DEFAULT_MAX_LINE_BYTES
from clawstats.watch.layout import MAX_CONFIG_BYTES, read_regular


class UsageError(ValueError):
    """A bad flag, env var or combination: one sentence for stderr, exit 2."""


class IOFailure(Exception):
    """The port cannot be bound or the output cannot be written: one sentence, exit 4."""


@dataclass(frozen=True, slots=True)
class Option:
    name: str  # Settings field
    flag: str
    env: str | None
    default: Any
    help: str
    parse: Callable[[str], Any] = str  # raises ValueError("<what is expected>")
    is_flag: bool = False  # store_true
    repeat: bool = False  # repeatable, env as comma-separated list
    shown_default: str | None = None  # for --help when the default is not a plain value


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected one of 1, true, yes, on, 0, false, no, off")


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    expected = (
        f"expected a whole number from {low} to {high}" if high is not None else f"expected a whole number >= {low}"
    )

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(expected) from None
        if value < low or (high is not None and value > high):
            raise ValueError(expected)
        return value

    return parse


def number(low: float, *, low_open: bool = False, high: float | None = None) -> Callable[[str], float]:
    """A finite float above ``low`` (or at it, unless ``low_open``), at most ``high``."""
    bound = f"> {low:g}" if low_open else f">= {low:g}"
    expected = f"expected a finite number {bound}" + (f" and <= {high:g}" if high is not None else "")

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(expected) from None
        if not math.isfinite(value) or value < low or (low_open and value == low):
            raise ValueError(expected)
        if high is not None and value > high:
            raise ValueError(expected)
        return value

    return parse


def http_url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")) or len(raw) <= len("https://"):
        raise ValueError("expected an http:// or https:// URL")
    return raw


def text(raw: str) -> str:
    if not raw.strip():
        raise ValueError("expected a non-empty value")
    return raw


POSITIVE = number(0, low_open=True)

STORE = [
    Option(
        "state_dir",
        "--state-dir",
        "CLAWSTATS_STATE_DIR",
        None,
        "OpenClaw state dir",
        text,
        shown_default="OPENCLAW_STATE_DIR, ~/.openclaw, ~/.clawdbot",
    ),
    Option("agent", "--agent", "CLAWSTATS_AGENT", None, "only this agent id", text, shown_default="all"),
    Option("no_cache", "--no-cache", "CLAWSTATS_NO_CACHE", False, "do not use the persisted index", parse_bool, True),
    Option(
        "cache_dir",
        "--cache-dir",
        "CLAWSTATS_CACHE_DIR",
        None,
        "where the persisted index lives",
        text,
        shown_default="the user cache dir",
    ),
    Option(
        "max_line_bytes",
        "--max-line-bytes",
        "CLAWSTATS_MAX_LINE_BYTES",
        DEFAULT_MAX_LINE_BYTES,
        "longer transcript lines are skipped and counted",
        whole(1),
    ),
]
SERVE = [
    Option("host", "--host", "CLAWSTATS_HOST", "127.0.0.1", "address to bind", text),
    Option("port", "--port", "CLAWSTATS_PORT", 18780, "port to bind (0: any free port)", whole(0, 65535)),
    Option("token", "--token", "CLAWSTATS_TOKEN", None, "require 'Authorization: Bearer <token>'", text),
    Option(
        "cors_origins",
        "--cors-origin",
        "CLAWSTATS_CORS_ORIGINS",
        (),
        "allow this browser origin (repeatable; '*' for any)",
        text,
        repeat=True,
    ),
    Option(
        "allowed_hosts",
        "--allowed-host",
        "CLAWSTATS_ALLOWED_HOSTS",
        (),
        "also accept requests whose Host header names this host (repeatable)",
        text,
        repeat=True,
    ),
    Option(
        "poll_interval_s",
        "--poll-interval-s",
        "CLAWSTATS_POLL_INTERVAL_S",
        1.0,
        "stat polling interval (file-system events wake the scanner sooner)",
        number(0.01),
    ),
    Option(
        "insecure_no_auth",
        "--insecure-no-auth",
        "CLAWSTATS_INSECURE_NO_AUTH",
        False,
        "allow a non-loopback bind without a token",
        parse_bool,
        True,
    ),
    Option(
        "metrics_active_minutes",
        "--metrics-active-minutes",
        "CLAWSTATS_METRICS_ACTIVE_MINUTES",
        1440.0,
        "per-session metric series only for sessions updated within this window",
        POSITIVE,
    ),
    Option(
        "events_queue_size",
        "--events-queue-size",
        "CLAWSTATS_EVENTS_QUEUE_SIZE",
        256,
        "events a stream client may fall behind before it is dropped",
        whole(1),
    ),
    Option(
        "otlp_endpoint", "--otlp-endpoint", "CLAWSTATS_OTLP_ENDPOINT", None, "push OTLP/HTTP metrics here", http_url
    ),
    Option(
        "otlp_interval_s", "--otlp-interval-s", "CLAWSTATS_OTLP_INTERVAL_S", 15.0, "OTLP export interval", number(0.1)
    ),
]
ALERTS = [
    Option("alerts_config", "--alerts-config", "CLAWSTATS_ALERTS_CONFIG", None, "alert rules file (TOML)", text),
    Option(
        "alert_context_pct",
        "--alert-context-pct",
        "CLAWSTATS_ALERT_CONTEXT_PCT",
        None,
        "context %% threshold (repeatable)",
        number(0, low_open=True, high=999),
        repeat=True,
        shown_default="80 and 95",
    ),
    Option(
        "alert_session_budget",
        "--alert-session-budget",
        "CLAWSTATS_ALERT_SESSION_BUDGET",
        None,
        "USD per session",
        POSITIVE,
    ),
    Option(
        "alert_agent_budget",
        "--alert-agent-budget",
        "CLAWSTATS_ALERT_AGENT_BUDGET",
        None,
        "USD per agent (cumulative)",
        POSITIVE,
    ),
    Option(
        "alert_daily_budget",
        "--alert-daily-budget",
        "CLAWSTATS_ALERT_DAILY_BUDGET",
        None,
        "USD per UTC day, all agents",
        POSITIVE,
    ),
    Option(
        "alert_stale_minutes",
        "--alert-stale-minutes",
        "CLAWSTATS_ALERT_STALE_MINUTES",
        None,
        "alert when a context has been an estimate this long",
        POSITIVE,
        shown_default="30",
    ),
    Option(
        "alert_webhooks",
        "--alert-webhook",
        "CLAWSTATS_ALERT_WEBHOOKS",
        (),
        "POST alerts to this URL (repeatable)",
        http_url,
        repeat=True,
    ),
]
SERVE += ALERTS
ALL_OPTIONS = STORE + SERVE
DEFAULTS: dict[str, Any] = {o.name: o.default for o in ALL_OPTIONS}


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved options; every default is the option table's (``DEFAULTS``)."""

    state_dir: str | None = DEFAULTS["state_dir"]
    agent: str | None = DEFAULTS["agent"]
    no_cache: bool = DEFAULTS["no_cache"]
    cache_dir: str | None = DEFAULTS["cache_dir"]
    max_line_bytes: int = DEFAULTS["max_line_bytes"]
    host: str = DEFAULTS["host"]
    port: int = DEFAULTS["port"]
    token: str | None = DEFAULTS["token"]
    cors_origins: tuple[str, ...] = DEFAULTS["cors_origins"]
    allowed_hosts: tuple[str, ...] = DEFAULTS["allowed_hosts"]
    poll_interval_s: float = DEFAULTS["poll_interval_s"]
    insecure_no_auth: bool = DEFAULTS["insecure_no_auth"]
    metrics_active_minutes: float = DEFAULTS["metrics_active_minutes"]
    events_queue_size: int = DEFAULTS["events_queue_size"]
    otlp_endpoint: str | None = DEFAULTS["otlp_endpoint"]
    otlp_interval_s: float = DEFAULTS["otlp_interval_s"]
    alerts_config: str | None = DEFAULTS["alerts_config"]
    alert_context_pct: tuple[float, ...] | None = DEFAULTS["alert_context_pct"]
    alert_session_budget: float | None = DEFAULTS["alert_session_budget"]
    alert_agent_budget: float | None = DEFAULTS["alert_agent_budget"]
    alert_daily_budget: float | None = DEFAULTS["alert_daily_budget"]
    alert_stale_minutes: float | None = DEFAULTS["alert_stale_minutes"]
    alert_webhooks: tuple[str, ...] = DEFAULTS["alert_webhooks"]
    #: Names of the fields whose value came from their env var (so messages name the right source).
    from_env: frozenset[str] = frozenset()

    def source(self, name: str) -> str:
        """Where a field's value came from, as a user wrote it: its flag or its env var."""
        option = _BY_NAME[name]
        return option.env if name in self.from_env and option.env else option.flag

    def alert_rules(self) -> AlertRules:
        """The rules file (if any), then the flags; raises AlertConfigError on bad values."""
        rules = AlertRules()
        if self.alerts_config:
            path = str(Path(self.alerts_config).expanduser())
            try:  # non-blocking and bounded: a FIFO or a huge file here is an error, not a hang
                text = read_regular(path, MAX_CONFIG_BYTES).decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise AlertConfigError(f"cannot read alert rules from {path}: {exc}") from None
            rules = AlertRules.from_toml(text, path, rules)
        overrides: dict[str, Any] = {}
        if self.alert_context_pct is not None:
            overrides["context_pct"] = tuple(self.alert_context_pct)
        for name, field_name in (
            ("alert_session_budget", "session_budget_usd"),
            ("alert_agent_budget", "agent_budget_usd"),
            ("alert_daily_budget", "daily_budget_usd"),
            ("alert_stale_minutes", "stale_minutes"),
        ):
            if getattr(self, name) is not None:
                overrides[field_name] = getattr(self, name)
        if self.alert_webhooks:
            overrides["webhooks"] = rules.webhooks + tuple(self.alert_webhooks)
        return validate(replace(rules, **overrides))

    @property
    def cache_path_dir(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else Path(platformdirs.user_cache_dir("clawstats"))


_BY_NAME = {o.name: o for o in ALL_OPTIONS}


def _help(opt: Option) -> str:
    shown = opt.shown_default
    if shown is None:
        if opt.is_flag:
            shown = "off"
        elif opt.default in (None, ()):
            shown = "none"
        else:
            shown = str(opt.default)
    env = f"; env {opt.env}" + (" (comma-separated)" if opt.repeat else "") if opt.env else ""
    return f"{opt.help} (default: {shown}{env})"


def add_options(parser: argparse.ArgumentParser, options: list[Option]) -> None:
    """Flags are taken as text here and parsed in :func:`resolve`, as their env vars are."""
    for opt in options:
        if opt.is_flag:
            parser.add_argument(opt.flag, dest=opt.name, action="store_true", default=None, help=_help(opt))
        elif opt.repeat:
            parser.add_argument(opt.flag, dest=opt.name, action="append", default=None, help=_help(opt))
        else:
            parser.add_argument(opt.flag, dest=opt.name, default=None, help=_help(opt))


def parse_value(source: str, raw: str, parse: Callable[[str], Any]) -> Any:
    """``parse(raw)``, or :class:`UsageError` naming ``source`` (a flag or an env var)."""
    try:
        return parse(raw)
    except ValueError as exc:
        raise UsageError(f"invalid {source} {raw[:80]!r}: {exc}") from None


def resolve(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Flags win; env vars fill flags left unset; defaults fill the rest. Raises UsageError."""
    values: dict[str, Any] = {}
    from_env: set[str] = set()
    for opt in ALL_OPTIONS:
        given = getattr(args, opt.name, argparse.SUPPRESS)
        if given is argparse.SUPPRESS:
            continue  # not an option of this command
        if given is True:  # a store_true flag
            values[opt.name] = True
            continue
        if given is not None:
            items = given if opt.repeat else [given]
            parsed = [parse_value(opt.flag, raw, opt.parse) for raw in items]
        elif opt.env and env.get(opt.env) not in (None, ""):
            raw = env[opt.env]
            from_env.add(opt.name)
            items = [p.strip() for p in raw.split(",") if p.strip()] if opt.repeat else [raw]
            parsed = [parse_value(opt.env, item, opt.parse) for item in items]
        else:
            continue
        values[opt.name] = tuple(parsed) if opt.repeat else parsed[0]
    return Settings(**values, from_env=frozenset(from_env))
