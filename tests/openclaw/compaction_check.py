"""turnsToCompaction against real compactions: replay a transcript and score each prediction.

After every model call the transcript is replayed up to that call into ``TranscriptStats`` and
:func:`clawstats.core.forecast.forecast` predicts the turn (1 = the next user turn) on which the
next automatic compaction happens; the actual turn is the number of user messages from that call
to the next ``compaction`` entry (a compaction before the turn's call, or after it, both count as
that turn). Predictions with no later compaction in the transcript are not scored, nor are those
where the compaction came right after the call (before any new user turn).

    .venv/bin/python -m tests.openclaw.compaction_check STATE_DIR WINDOW TRANSCRIPT.jsonl [...]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from clawstats.core.forecast import CompactionConfig, compaction_config, forecast
from clawstats.core.records import decode_line
from clawstats.core.transcript import TranscriptStats


@dataclass(frozen=True)
class Scored:
    call: int
    predicted: int | None
    actual: int


def score(lines: Iterable[bytes], window: int, config: CompactionConfig) -> list[Scored]:
    stats = TranscriptStats()
    # events after each call: "u" user message, "c" compaction
    predictions: list[tuple[int, int | None]] = []
    events: list[str] = []
    calls_seen = 0
    for raw in lines:
        if not raw.strip():
            continue
        line = decode_line(raw)
        stats.apply(line)
        if line.type == "compaction":
            events.append("c")
        elif line.type == "message" and line.message is not None:
            if line.message.role == "user":
                events.append("u")
            elif stats.calls > calls_seen:
                calls_seen = stats.calls
                ms, ctx, _cost, out = stats.timeline()
                _, left = forecast(ms, ctx, out, [c.at_ms for c in stats.compactions], window, config)
                predictions.append((len(events), left.turns))
                events.append("a")
    scored: list[Scored] = []
    for n, (start, predicted) in enumerate(predictions):
        turns = 0
        for event in events[start + 1 :]:
            if event == "u":
                turns += 1
            elif event == "c":
                if turns:
                    scored.append(Scored(n, predicted, turns))
                break
    return scored


def summary(scored: list[Scored]) -> dict[str, float]:
    """Counts and error figures of scored predictions."""
    estimated = [s for s in scored if s.predicted is not None]
    errors = [s.predicted - s.actual for s in estimated if s.predicted is not None]
    return {
        "scored": len(scored),
        "estimated": len(estimated),
        "exact": sum(1 for e in errors if e == 0),
        "withinOne": sum(1 for e in errors if abs(e) <= 1),
        "meanAbsError": sum(abs(e) for e in errors) / len(errors) if errors else 0.0,
        "meanError": sum(errors) / len(errors) if errors else 0.0,
    }


def main(argv: list[str]) -> int:
    """``STATE_DIR WINDOW TRANSCRIPT...``: the config is the state dir's ``openclaw.json``."""
    config = compaction_config(json.loads((Path(argv[0]) / "openclaw.json").read_text()))
    window = int(argv[1])
    scored: list[Scored] = []
    for path in argv[2:]:
        with Path(path).open("rb") as fh:
            scored += score(fh, window, config)
    print(json.dumps(summary(scored)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
