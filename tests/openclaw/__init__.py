"""Running the real OpenClaw gateway offline for tests (see ``harness.py``)."""
