"""Command line: ``clawstats sessions``, ``usage``, ``check``, ``serve`` and ``demo``.

``main(argv) -> int`` is the whole CLI (testable without a subprocess). One-shot commands read
the store once through the same ``StatsStore`` the server uses, so ``sessions --json`` prints
the very rows ``GET /api/sessions`` serves. Every expected failure leaves through one handler
in :func:`main`: one sentence on stderr and a code from :data:`EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import msgspec

from clawstats import __version__
from clawstats.core.alerts import AlertConfigError, breaches
from clawstats.core.attribution import ATTRIBUTION_BY
from clawstats.core.query import QueryError, parse_day, parse_query, select
from clawstats.core.session import iso_ms
from clawstats.core.snapshot import Snapshot
from clawstats.core.table import format_sessions_table, format_usage_table
from clawstats.core.totals import GROUP_BY
from clawstats.settings import SERVE, STORE, IOFailure, Settings, UsageError, add_options, number, parse_value, resolve
from clawstats.watch.answers import Answer, fresh_health
from clawstats.watch.engine import Answers, open_store
from clawstats.watch.layout import StateDirError
from clawstats.watch.store import StatsStore, tune_allocator

_encoder = msgspec.json.Encoder()

EXIT_OK, EXIT_BREACH, EXIT_USAGE, EXIT_UNREADABLE, EXIT_IO = 0, 1, 2, 3, 4
CHECK_UNREADABLE = EXIT_UNREADABLE
#: The README's exit-code table (a test keeps them equal).
EXIT_CODES = {
    EXIT_OK: "success; `check`: no limit exceeded",
    EXIT_BREACH: "`check`: a limit was exceeded (one line per breach on stdout)",
    EXIT_USAGE: "bad usage: an invalid flag, env var, query or config value, no state dir, an unsafe bind",
    EXIT_UNREADABLE: "`check`: part of the data could not be read, so no all-clear (breaches found are still listed)",
    EXIT_IO: "I/O failure: the port cannot be bound, the output cannot be written",
}


class DataUnavailable(Exception):
    """``check`` could not see (all of) the data: exit 3, never a false all-clear."""


ERRORS: tuple[tuple[type[Exception], int], ...] = (
    (UsageError, EXIT_USAGE),
    (StateDirError, EXIT_USAGE),
    (QueryError, EXIT_USAGE),
    (AlertConfigError, EXIT_USAGE),
    (DataUnavailable, EXIT_UNREADABLE),
    (IOFailure, EXIT_IO),
)
LIMIT = number(0)  # a check limit: finite, not negative


#: One format for every log line, uvicorn's included (``run_app`` gives uvicorn no logging
#: config of its own, so its loggers propagate here): UTC time to the millisecond, level, logger.
LOG_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


def configure_logging(level: str) -> None:
    formatter = logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT)
    formatter.converter = time.gmtime
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    logging.basicConfig(level=level.upper(), handlers=[handler])


def _log_level(parser: argparse.ArgumentParser, top: bool) -> None:
    # On the top parser and on every subcommand (``clawstats sessions --log-level debug``).
    parser.add_argument(
        "--log-level",
        default="warning" if top else argparse.SUPPRESS,
        choices=("debug", "info", "warning", "error"),
        help="log verbosity (default: warning)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clawstats", description="Live per-session statistics for OpenClaw.")
    parser.add_argument("--version", action="version", version=f"clawstats {__version__}")
    _log_level(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, help_text: str, func: Callable[[argparse.Namespace, Settings], int]
    ) -> argparse.ArgumentParser:
        child = sub.add_parser(name, help=help_text)
        child.set_defaults(func=func)
        _log_level(child, top=False)
        return child

    sessions = command("sessions", "print per-session statistics once", _sessions)
    add_options(sessions, STORE)
    sessions.add_argument("--active", metavar="MINUTES", help="only sessions updated within MINUTES")
    sessions.add_argument("--sort", default="updated", help="updated|cost|context|key (default: updated)")
    sessions.add_argument("--limit", metavar="N", help="at most N rows")
    sessions.add_argument("--model", help="only this model (provider/model or model)")
    out = sessions.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="JSON, as GET /api/sessions")
    out.add_argument("--csv", action="store_true", help="RFC 4180 CSV")

    usage = command("usage", "print usage and cost grouped by model, agent, day, parent, cron, channel or kind", _usage)
    add_options(usage, STORE)
    usage.add_argument("--by", default="model", choices=GROUP_BY + ATTRIBUTION_BY, help="grouping (default: model)")
    usage.add_argument("--since", metavar="DAY", help="first UTC day, YYYY-MM-DD")
    usage.add_argument("--until", metavar="DAY", help="last UTC day, YYYY-MM-DD")
    usage_out = usage.add_mutually_exclusive_group()
    usage_out.add_argument("--json", action="store_true", help="JSON, as GET /api/usage")
    usage_out.add_argument("--csv", action="store_true", help="RFC 4180 CSV")

    check = command("check", "exit 1 with one line per exceeded limit (for cron), 3 if unreadable, else 0", _check)
    add_options(check, STORE)
    check.add_argument("--max-daily-cost", metavar="USD", help="today's (UTC) cost, all agents")
    check.add_argument("--max-context-pct", metavar="PCT", help="any session's context %%")
    check.add_argument("--max-session-cost", metavar="USD", help="any session's cost")
    check.add_argument("--max-agent-cost", metavar="USD", help="any agent's cumulative cost")

    serve = command("serve", "serve the HTTP API and the live page", _serve)
    add_options(serve, STORE + SERVE)

    demo = command("demo", "serve a replay of bundled real OpenClaw data", _demo)
    add_options(demo, [o for o in STORE + SERVE if o.name not in ("state_dir", "agent")])
    demo.add_argument("--speed", default="4", help="replay speed factor (default: 4)")
    return parser


def _problems(settings: Settings, store: StatsStore, snapshot: Snapshot) -> list[str]:
    """Why the data read is incomplete: no agent at all, or unreadable paths (the cache aside)."""
    cache_path = str(store.cache.path) if store.cache is not None else None
    reasons = [f"{path}: {why}" for path, why in sorted(snapshot.health.conditions.items()) if path != cache_path]
    if not store.health.layouts:
        which = f'agent "{settings.agent}"' if settings.agent else "OpenClaw session store"
        reasons.insert(
            0,
            f"anything: no {which} found in {store.state_dir} "
            "(expected agents/<id>/sessions/ or agents/<id>/agent/openclaw-agent.sqlite)",
        )
    return reasons


def _read(settings: Settings) -> tuple[Snapshot, list[str], StatsStore]:
    """One scan; the reasons the data may be incomplete (also written to stderr); the store."""
    # One-shot and single-threaded here: a cold read may fork one worker per core.
    tune_allocator()  # the workers' batches (~2 MB each) leave no holes: peak RSS ~330 vs ~345 MiB at 50k
    cores = os.cpu_count() or 1
    store = open_store(settings, os.environ, workers=cores)
    store.split_rows = cores > 1  # the rows after the read, on two cores too (a server does not fork then)
    snapshot = store.scan()
    store.close()
    problems = _problems(settings, store, snapshot)
    for problem in problems:
        sys.stderr.write(f"clawstats: warning: could not read {problem}\n")
    return snapshot, problems, store


def _answer(settings: Settings) -> tuple[Answer, float, list[str]]:
    """(rows, totals and health; when they were generated; what could not be read): the last
    answer when no input changed since it was saved (:mod:`clawstats.watch.answers`), else a
    full read, saved as the next answer."""
    started, started_ns = time.perf_counter(), time.time_ns()
    answers = None if settings.no_cache else Answers.of(settings, os.environ)
    if answers is not None:
        found = answers.load()
        if found is not None:
            return msgspec.structs.replace(found, health=fresh_health(found.health, started)), time.time() * 1000.0, []
    snapshot, problems, store = _read(settings)
    answer = Answer(list(snapshot.rows), snapshot.totals, snapshot.health)
    if answers is not None and not problems:
        answers.save(answer, store, started_ns)
    return answer, snapshot.generated_ms, problems


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
    answer, generated_ms, _ = _answer(settings)
    now_ms = time.time() * 1000.0
    rows, _ = select(answer.rows, query, now_ms)
    if args.json:
        body = {
            "sessions": rows,
            "totals": answer.totals,
            "generatedAt": iso_ms(generated_ms),
            "health": answer.health.to_dict(),
        }
        _write_json(body)
    elif args.csv:
        from clawstats.core.export import sessions_csv

        _write(sessions_csv(rows))
    else:
        totals = answer.totals
        table = format_sessions_table(rows, now_ms)
        unknown = f"; {totals.unknown_sessions} with unknown cost (?)" if totals.unknown_sessions else ""
        _write(f"{table}\n\n{len(rows)} sessions; total cost ${totals.total_cost:.4f} (archives included){unknown}\n")
    return EXIT_OK


def _usage(args: argparse.Namespace, settings: Settings) -> int:
    since, until = parse_day("since", args.since), parse_day("until", args.until)
    snapshot, _, _ = _read(settings)
    groups = snapshot.usage(args.by, since, until)
    if args.json:
        body = {"by": args.by, "since": since, "until": until, "groups": groups}
        _write_json(body)
    elif args.csv:
        from clawstats.core.export import usage_csv

        _write(usage_csv(groups, args.by))
    else:
        _write(format_usage_table(groups, args.by) + "\n")
    return EXIT_OK


def _check(args: argparse.Namespace, settings: Settings) -> int:
    names = ("max_daily_cost", "max_context_pct", "max_session_cost", "max_agent_cost")
    limits = [
        None if getattr(args, n) is None else parse_value("--" + n.replace("_", "-"), getattr(args, n), LIMIT)
        for n in names
    ]
    if all(limit is None for limit in limits):
        raise UsageError("check needs at least one --max-* limit")
    answer, _, problems = _answer(settings)
    lines = breaches(answer.rows, answer.totals, time.time() * 1000.0, *limits)
    _write("".join(line + "\n" for line in lines))
    if problems:  # a figure that could not be read is not a figure under the limit
        raise DataUnavailable(f"no all-clear: the data could not be read completely ({len(problems)} problem(s) above)")
    return EXIT_BREACH if lines else EXIT_OK


def _serve(_args: argparse.Namespace, settings: Settings) -> int:
    from clawstats.api.server import serve

    return serve(settings, os.environ)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from clawstats.demo import run_demo

    return run_demo(settings, parse_value("--speed", args.speed, number(0.01)))


@contextlib.contextmanager
def _writing() -> Iterator[None]:
    """A failed write of the output is an I/O failure (a reader that left is not: see ``main``)."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise IOFailure(f"cannot write the output: {exc.strerror or exc}") from None


def _write(text: str) -> None:
    with _writing():
        sys.stdout.write(text)
        sys.stdout.flush()


def _write_json(body: object) -> None:
    """``body`` as one JSON line. The encoder's UTF-8 goes to stdout's byte stream as it is: as
    text it was decoded, joined with the newline and encoded again (three copies of ~41 MB at
    50,000 sessions)."""
    data = _encoder.encode(body)
    stream = getattr(sys.stdout, "buffer", None)  # none on a text-only stream (a StringIO)
    if stream is None:
        _write(data.decode() + "\n")
        return
    with _writing():
        sys.stdout.flush()  # anything written as text before goes first
        stream.write(data)
        stream.write(b"\n")
        stream.flush()


def _silence_stdout() -> None:
    # What could not be written must not be retried (and fail again) at interpreter exit.
    try:
        fileno = sys.stdout.fileno()
    except (OSError, ValueError):
        return  # not a real file (a test capture): nothing is flushed at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        settings = resolve(args, os.environ)
        code: int = args.func(args, settings)
        return code
    except BrokenPipeError:  # `clawstats sessions | head`: the reader left, not an error
        _silence_stdout()
        return EXIT_OK
    except tuple(kind for kind, _ in ERRORS) as exc:
        if isinstance(exc, IOFailure):
            _silence_stdout()
        sys.stderr.write(f"clawstats: {exc}\n")
        return next(code for kind, code in ERRORS if isinstance(exc, kind))
