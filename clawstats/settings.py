"""Every option, declared once: CLI flag, environment variable, default and help.

``OPTIONS`` drives argparse, the env fallbacks (``CLAWSTATS_*``, consulted only for flags left
unset) and the README test; :class:`Settings` is the frozen result. Nothing reads
``os.environ`` after :func:`resolve`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from clawstats.core.alerts import AlertRules, validate
from clawstats.core.records import DEFAULT_MAX_LINE_BYTES


@dataclass(frozen=True, slots=True)
class Option:
    name: str  # Settings field
    flag: str
    env: str | None
    default: Any
    help: str
    kind: Callable[[str], Any] = str
    is_flag: bool = False  # store_true
    repeat: bool = False  # repeatable, env as comma-separated list
    choices: tuple[str, ...] | None = None


def _bool(raw: str) -> bool:
    return raw.strip().lower() in ("1", "true", "yes", "on")


STORE = [
    Option("state_dir", "--state-dir", "CLAWSTATS_STATE_DIR", None, "OpenClaw state dir (default: see README)"),
    Option("agent", "--agent", "CLAWSTATS_AGENT", None, "only this agent id"),
    Option("no_cache", "--no-cache", "CLAWSTATS_NO_CACHE", False, "do not use the persisted index", _bool, True),
    Option("cache_dir", "--cache-dir", "CLAWSTATS_CACHE_DIR", None, "where the persisted index lives"),
    Option(
        "max_line_bytes",
        "--max-line-bytes",
        "CLAWSTATS_MAX_LINE_BYTES",
        DEFAULT_MAX_LINE_BYTES,
        "longer transcript lines are skipped and counted",
        int,
    ),
]
SERVE = [
    Option("host", "--host", "CLAWSTATS_HOST", "127.0.0.1", "address to bind"),
    Option("port", "--port", "CLAWSTATS_PORT", 18780, "port to bind (0: any free port)", int),
    Option("token", "--token", "CLAWSTATS_TOKEN", None, "require 'Authorization: Bearer <token>'"),
    Option(
        "cors_origins",
        "--cors-origin",
        "CLAWSTATS_CORS_ORIGINS",
        (),
        "allow this browser origin (repeatable; '*' for any)",
        repeat=True,
    ),
    Option(
        "poll_interval_s",
        "--poll-interval-s",
        "CLAWSTATS_POLL_INTERVAL_S",
        1.0,
        "stat polling interval (file-system events wake the scanner sooner)",
        float,
    ),
    Option(
        "insecure_no_auth",
        "--insecure-no-auth",
        "CLAWSTATS_INSECURE_NO_AUTH",
        False,
        "allow a non-loopback bind without a token",
        _bool,
        True,
    ),
    Option(
        "metrics_active_minutes",
        "--metrics-active-minutes",
        "CLAWSTATS_METRICS_ACTIVE_MINUTES",
        1440.0,
        "per-session metric series only for sessions updated within this window",
        float,
    ),
]
SERVE += [
    Option(
        "events_queue_size",
        "--events-queue-size",
        "CLAWSTATS_EVENTS_QUEUE_SIZE",
        256,
        "events a stream client may fall behind before it is dropped",
        int,
    ),
    Option("otlp_endpoint", "--otlp-endpoint", "CLAWSTATS_OTLP_ENDPOINT", None, "push OTLP/HTTP metrics here"),
    Option(
        "otlp_interval_s",
        "--otlp-interval-s",
        "CLAWSTATS_OTLP_INTERVAL_S",
        15.0,
        "OTLP export interval",
        float,
    ),
]
ALERTS = [
    Option("alerts_config", "--alerts-config", "CLAWSTATS_ALERTS_CONFIG", None, "alert rules file (TOML)"),
    Option(
        "alert_context_pct",
        "--alert-context-pct",
        "CLAWSTATS_ALERT_CONTEXT_PCT",
        None,
        "context %% threshold (repeatable; default 80 and 95)",
        float,
        repeat=True,
    ),
    Option(
        "alert_session_budget",
        "--alert-session-budget",
        "CLAWSTATS_ALERT_SESSION_BUDGET",
        None,
        "USD per session",
        float,
    ),
    Option(
        "alert_agent_budget",
        "--alert-agent-budget",
        "CLAWSTATS_ALERT_AGENT_BUDGET",
        None,
        "USD per agent (cumulative)",
        float,
    ),
    Option(
        "alert_daily_budget",
        "--alert-daily-budget",
        "CLAWSTATS_ALERT_DAILY_BUDGET",
        None,
        "USD per UTC day, all agents",
        float,
    ),
    Option(
        "alert_stale_minutes",
        "--alert-stale-minutes",
        "CLAWSTATS_ALERT_STALE_MINUTES",
        None,
        "alert when a context has been an estimate this long (default 30)",
        float,
    ),
    Option(
        "alert_webhooks",
        "--alert-webhook",
        "CLAWSTATS_ALERT_WEBHOOKS",
        (),
        "POST alerts to this URL (repeatable)",
        repeat=True,
    ),
]
SERVE += ALERTS
ALL_OPTIONS = STORE + SERVE


@dataclass(frozen=True, slots=True)
class Settings:
    state_dir: str | None = None
    agent: str | None = None
    no_cache: bool = False
    cache_dir: str | None = None
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    host: str = "127.0.0.1"
    port: int = 18780
    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    poll_interval_s: float = 1.0
    insecure_no_auth: bool = False
    metrics_active_minutes: float = 1440.0
    events_queue_size: int = 256
    otlp_endpoint: str | None = None
    otlp_interval_s: float = 15.0
    alerts_config: str | None = None
    alert_context_pct: tuple[float, ...] | None = None
    alert_session_budget: float | None = None
    alert_agent_budget: float | None = None
    alert_daily_budget: float | None = None
    alert_stale_minutes: float | None = None
    alert_webhooks: tuple[str, ...] = ()

    def alert_rules(self) -> AlertRules:
        """The rules file (if any), then the flags; raises AlertConfigError on bad values."""
        rules = AlertRules()
        if self.alerts_config:
            rules = AlertRules.from_toml(Path(self.alerts_config).expanduser(), rules)
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


def add_options(parser: argparse.ArgumentParser, options: list[Option]) -> None:
    for opt in options:
        if opt.is_flag:
            parser.add_argument(opt.flag, dest=opt.name, action="store_true", default=None, help=opt.help)
        elif opt.repeat:
            parser.add_argument(opt.flag, dest=opt.name, action="append", type=opt.kind, default=None, help=opt.help)
        else:
            parser.add_argument(opt.flag, dest=opt.name, type=opt.kind, default=None, help=opt.help)


def resolve(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Flags win; env vars fill flags left unset; defaults fill the rest."""
    values: dict[str, Any] = {}
    for opt in ALL_OPTIONS:
        given = getattr(args, opt.name, None)
        if given is None and opt.env and env.get(opt.env) not in (None, ""):
            raw = env[opt.env]
            try:
                given = [opt.kind(p.strip()) for p in raw.split(",") if p.strip()] if opt.repeat else opt.kind(raw)
            except ValueError:
                raise SystemExit(f"clawstats: invalid {opt.env}={raw!r}") from None
        if given is not None:
            values[opt.name] = tuple(given) if opt.repeat else given
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in values.items() if k in known})
