"""``clawstats demo``: placeholder until the replay lands (issue 5)."""

from __future__ import annotations

import sys

from clawstats.settings import Settings


def run_demo(settings: Settings, speed: float) -> int:
    sys.stderr.write("clawstats: demo is not available yet\n")
    return 1
