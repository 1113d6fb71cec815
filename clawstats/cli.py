"""Command line: ``clawstats sessions``, ``usage``, ``serve`` and ``demo``.

``main(argv) -> int`` is the whole CLI (testable without a subprocess). One-shot commands read
the store once through the same ``StatsStore`` the server uses, so ``sessions --json`` prints
the very rows ``GET /api/sessions`` serves.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

import msgspec

from clawstats import __version__
from clawstats.core.alerts import AlertConfigError, breaches
from clawstats.core.query import QueryError, parse_day, parse_query, select
from clawstats.core.session import iso_ms
from clawstats.core.snapshot import Snapshot
from clawstats.core.table import format_sessions_table, format_usage_table
from clawstats.core.totals import GROUP_BY
from clawstats.settings import SERVE, STORE, Settings, add_options, resolve
from clawstats.watch.engine import open_store
from clawstats.watch.layout import StateDirError

_encoder = msgspec.json.Encoder()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clawstats", description="Live per-session statistics for OpenClaw.")
    parser.add_argument("--version", action="version", version=f"clawstats {__version__}")
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    sub = parser.add_subparsers(dest="command", required=True)

    sessions = sub.add_parser("sessions", help="print per-session statistics once")
    add_options(sessions, STORE)
    sessions.add_argument("--active", metavar="MINUTES", help="only sessions updated within MINUTES")
    sessions.add_argument("--sort", default="updated", help="updated|cost|context|key")
    sessions.add_argument("--limit", metavar="N", help="at most N rows")
    sessions.add_argument("--model", help="only this model (provider/model or model)")
    out = sessions.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="JSON, as GET /api/sessions")
    out.add_argument("--csv", action="store_true", help="RFC 4180 CSV")

    usage = sub.add_parser("usage", help="print usage and cost grouped by model, agent or day")
    add_options(usage, STORE)
    usage.add_argument("--by", default="model", choices=GROUP_BY)
    usage.add_argument("--since", metavar="DAY", help="first UTC day, YYYY-MM-DD")
    usage.add_argument("--until", metavar="DAY", help="last UTC day, YYYY-MM-DD")
    usage_out = usage.add_mutually_exclusive_group()
    usage_out.add_argument("--json", action="store_true", help="JSON, as GET /api/usage")
    usage_out.add_argument("--csv", action="store_true", help="RFC 4180 CSV")

    check = sub.add_parser("check", help="exit 1 with one line per exceeded limit (for cron), else 0")
    add_options(check, STORE)
    check.add_argument("--max-daily-cost", type=float, metavar="USD", help="today's (UTC) cost, all agents")
    check.add_argument("--max-context-pct", type=float, metavar="PCT", help="any session's context %%")
    check.add_argument("--max-session-cost", type=float, metavar="USD", help="any session's cost")
    check.add_argument("--max-agent-cost", type=float, metavar="USD", help="any agent's cumulative cost")

    serve = sub.add_parser("serve", help="serve the HTTP API and the live page")
    add_options(serve, STORE + SERVE)

    demo = sub.add_parser("demo", help="serve a replay of bundled real OpenClaw data")
    add_options(demo, [o for o in STORE + SERVE if o.name not in ("state_dir", "agent")])
    demo.add_argument("--speed", type=float, default=4.0, help="replay speed factor (default 4)")
    return parser


def _scan_once(settings: Settings) -> Snapshot:
    # One-shot and single-threaded here: a cold read may fork one worker per core.
    store = open_store(settings, os.environ, workers=os.cpu_count() or 1)
    snapshot = store.scan()
    store.close()
    return snapshot


def _sessions(args: argparse.Namespace, settings: Settings) -> int:
    params = {"sort": args.sort}
    if args.active:
        params["active"] = args.active
    if args.limit:
        params["limit"] = args.limit
    if args.model:
        params["model"] = args.model
    if settings.agent:
        params["agent"] = settings.agent
    query = parse_query(params)
    snapshot = _scan_once(settings)
    now_ms = time.time() * 1000.0
    rows, _ = select(snapshot.rows, query, now_ms)
    if args.json:
        body = {
            "sessions": rows,
            "totals": snapshot.totals,
            "generatedAt": iso_ms(snapshot.generated_ms),
            "health": snapshot.health.to_dict(),
        }
        sys.stdout.write(_encoder.encode(body).decode() + "\n")
    elif args.csv:
        from clawstats.core.export import sessions_csv

        sys.stdout.write(sessions_csv(rows))
    else:
        sys.stdout.write(format_sessions_table(rows, now_ms) + "\n")
        totals = snapshot.totals
        unknown = f"; {totals.unknown_sessions} with unknown cost (?)" if totals.unknown_sessions else ""
        sys.stdout.write(f"\n{len(rows)} sessions; total cost ${totals.total_cost:.4f} (archives included){unknown}\n")
    for reason in unreadable(snapshot):
        sys.stderr.write(f"clawstats: degraded, could not read {reason}\n")
    return 0


def _usage(args: argparse.Namespace, settings: Settings) -> int:
    since, until = parse_day("since", args.since), parse_day("until", args.until)
    snapshot = _scan_once(settings)
    groups = snapshot.usage(args.by, since, until)
    if args.json:
        body = {"by": args.by, "since": since, "until": until, "groups": groups}
        sys.stdout.write(_encoder.encode(body).decode() + "\n")
    elif args.csv:
        from clawstats.core.export import usage_csv

        sys.stdout.write(usage_csv(groups, args.by))
    else:
        sys.stdout.write(format_usage_table(groups, args.by) + "\n")
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    limits = (args.max_daily_cost, args.max_context_pct, args.max_session_cost, args.max_agent_cost)
    if all(limit is None for limit in limits):
        sys.stderr.write("clawstats: check needs at least one --max-* limit\n")
        return 2
    snapshot = _scan_once(settings)
    lines = breaches(snapshot, time.time() * 1000.0, *limits)
    for line in lines:
        sys.stdout.write(line + "\n")
    missing = unreadable(snapshot)
    for reason in missing:
        sys.stderr.write(f"clawstats: could not read {reason}\n")
    if missing:
        return CHECK_UNREADABLE  # a figure we could not read is not a figure under the limit
    return 1 if lines else 0


#: ``clawstats check``: part of the store could not be read, so the limits were not checked on it.
CHECK_UNREADABLE = 3


def unreadable(snapshot: Snapshot) -> list[str]:
    """The parts of the store that could not be read (health conditions under the state dir)."""
    prefix = snapshot.state_dir.rstrip("/")
    return [
        f"{path}: {reason}"
        for path, reason in sorted(snapshot.health.conditions.items())
        if path == prefix or path.startswith(prefix + "/")
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="clawstats: %(levelname)s %(message)s")
    settings = resolve(args, os.environ)
    try:
        if args.command == "sessions":
            return _sessions(args, settings)
        if args.command == "usage":
            return _usage(args, settings)
        if args.command == "check":
            return _check(args, settings)
        if args.command == "serve":
            from clawstats.api.server import serve

            return serve(settings, os.environ)
        if args.command == "demo":
            from clawstats.demo import run_demo

            return run_demo(settings, args.speed)
    except StateDirError as exc:
        sys.stderr.write(f"clawstats: {exc}\n")
        return 2
    except (QueryError, AlertConfigError) as exc:
        sys.stderr.write(f"clawstats: {exc}\n")
        return 2
    except BrokenPipeError:
        return 0
    parser.error(f"unknown command {args.command}")
    return 2
