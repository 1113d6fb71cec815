"""Coverage-guided fuzzing (atheris, libFuzzer) of every parser of outside input.

    python fuzz/fuzz_parsers.py -max_total_time=600 CORPUS fuzz/seeds  # long run (make fuzz)
    python fuzz/fuzz_parsers.py -runs=20000                          # short run (the test suite)

One input is split by its first byte into: transcript lines folded into statistics, a whole
``sessions.json``, an SQLite ``entry_json`` row, or an HTTP query string. Any exception other
than the documented rejections is a crash libFuzzer reports (with the input saved).
"""

from __future__ import annotations

import sys
from urllib.parse import parse_qsl

import atheris

with atheris.instrument_imports():
    from clawstats.core.catalog import Catalog
    from clawstats.core.query import QueryError, parse_query
    from clawstats.core.records import BadRecord, decode_line, parse_index, parse_index_row
    from clawstats.core.session import build_row
    from clawstats.core.transcript import TranscriptStats


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 4, data[1:]
    if mode == 0:
        stats = TranscriptStats()
        for raw in body.split(b"\n"):
            try:
                stats.apply(decode_line(raw))
            except BadRecord:
                pass
        stats.context()
        TranscriptStats.load(stats.dump())
        build_row("agent:x:y", "x", None, stats, Catalog())
    elif mode == 1:
        try:
            parse_index(body)
        except BadRecord:
            pass
    elif mode == 2:
        try:
            parse_index_row(body)
        except BadRecord:
            pass
    else:
        try:
            parse_query(dict(parse_qsl(body.decode("utf-8", "replace"))))
        except QueryError:
            pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
