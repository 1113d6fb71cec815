"""What a one-shot CLI no longer imports, against what it replaced: the same answers."""

from __future__ import annotations

import statistics
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from clawstats.core.forecast import median
from clawstats.core.pricing import genai_prices_id


@given(st.lists(st.integers(min_value=-(10**9), max_value=10**9), min_size=1, max_size=40))
def test_median_is_the_statistics_one(values: list[int]) -> None:
    assert median(values) == statistics.median(values)
    assert type(median(values)) is type(statistics.median(values))


def test_the_price_data_is_named_by_the_installed_version() -> None:
    assert genai_prices_id() == f"genai-prices {version('genai-prices')}"


def test_the_cli_imports_no_heavy_module_it_does_not_use(tmp_path: Path) -> None:
    """``sessions`` on a store without a config and too small to fork: none of these load."""
    sessions = tmp_path / "state/agents/main/sessions"
    sessions.mkdir(parents=True)
    (sessions / "sessions.json").write_text("{}")
    probe = (
        "import sys; from clawstats.cli import main; import io, contextlib\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['sessions', '--json', '--no-cache', "
        "'--state-dir', sys.argv[1]])\n"
        "heavy = ('statistics', 'importlib.metadata', 'json5', 'multiprocessing')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "state")], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr
