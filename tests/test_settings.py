"""Settings: one option table, one validation with one message for flag and env var, one exit-code table."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clawstats.cli import main
from clawstats.settings import ALL_OPTIONS, Settings
from tests.conftest import SMALL_STATE

STATE = str(SMALL_STATE)
README = (Path(__file__).parent.parent / "README.md").read_text()


def _run(args: list[str], env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLAWSTATS_", "OPENCLAW_"))}
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(
        [sys.executable, "-m", "clawstats", *args],
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **(env or {})},
        **kw,  # type: ignore[arg-type]
    )


def test_defaults_come_from_the_option_table() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(Settings) if f.name != "from_env"}
    assert set(fields) == {o.name for o in ALL_OPTIONS}
    for option in ALL_OPTIONS:
        assert fields[option.name] == option.default, option.name


def test_help_shows_default_and_env_var(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "CLAWSTATS_PORT" in text and "default: 18780" in text
    assert "CLAWSTATS_POLL_INTERVAL_S" in text and "default: 1.0" in text


def test_log_level_after_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "--state-dir", STATE, "--no-cache", "--json", "--log-level", "error"]) == 0
    assert json.loads(capsys.readouterr().out)["sessions"]


BAD_VALUES = [
    ("--port", "CLAWSTATS_PORT", "70000"),
    ("--port", "CLAWSTATS_PORT", "-1"),
    ("--port", "CLAWSTATS_PORT", "abc"),
    ("--max-line-bytes", "CLAWSTATS_MAX_LINE_BYTES", "0"),
    ("--max-line-bytes", "CLAWSTATS_MAX_LINE_BYTES", "-5"),
    ("--poll-interval-s", "CLAWSTATS_POLL_INTERVAL_S", "0"),
    ("--poll-interval-s", "CLAWSTATS_POLL_INTERVAL_S", "-1"),
    ("--poll-interval-s", "CLAWSTATS_POLL_INTERVAL_S", "nan"),
    ("--alert-stale-minutes", "CLAWSTATS_ALERT_STALE_MINUTES", "nan"),
    ("--alert-session-budget", "CLAWSTATS_ALERT_SESSION_BUDGET", "inf"),
    ("--metrics-active-minutes", "CLAWSTATS_METRICS_ACTIVE_MINUTES", "-3"),
    ("--events-queue-size", "CLAWSTATS_EVENTS_QUEUE_SIZE", "0"),
    ("--alert-webhook", "CLAWSTATS_ALERT_WEBHOOKS", "file:///etc/passwd"),
]


@pytest.mark.parametrize(("flag", "env", "value"), BAD_VALUES)
def test_bad_value_same_message_and_exit_2_from_flag_and_env(
    flag: str, env: str, value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["serve", "--state-dir", STATE, "--no-cache", flag, value]) == 2
    from_flag = capsys.readouterr().err
    monkeypatch.setenv(env, value)
    assert main(["serve", "--state-dir", STATE, "--no-cache"]) == 2
    from_env = capsys.readouterr().err
    assert from_flag.count("\n") == 1 and from_env.count("\n") == 1
    assert "Traceback" not in from_flag + from_env
    assert from_flag.startswith(f"clawstats: invalid {flag} ")
    assert from_env.startswith(f"clawstats: invalid {env} ")
    # The same sentence after the name of the source.
    assert from_flag.split(":", 2)[2].split(" ", 2)[2] == from_env.split(":", 2)[2].split(" ", 2)[2]


def test_boolean_env_must_be_a_boolean(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWSTATS_NO_CACHE", "maybe")
    assert main(["sessions", "--state-dir", STATE]) == 2
    assert "CLAWSTATS_NO_CACHE" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--max-session-cost", "nan"],
        ["check", "--max-session-cost", "inf"],
        ["check", "--max-context-pct", "-1"],
        ["usage", "--since", "2026-13-45"],
        ["usage", "--until", "2026-02-30"],
    ],
)
def test_meaningless_command_values_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*args, "--state-dir", STATE, "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("clawstats: invalid ") and err.count("\n") == 1


def test_env_state_dir_message_names_the_env_var(tmp_path: Path) -> None:
    proc = _run(["sessions"], {"CLAWSTATS_STATE_DIR": str(tmp_path / "nonexistent")})
    assert proc.returncode == 2
    assert "(from CLAWSTATS_STATE_DIR)" in proc.stderr and "--state-dir)" not in proc.stderr.split("(set")[0]


def test_missing_config_path_is_an_error(tmp_path: Path) -> None:
    proc = _run(["sessions", "--state-dir", STATE, "--no-cache"], {"OPENCLAW_CONFIG_PATH": str(tmp_path / "nope.json")})
    assert proc.returncode == 2
    assert "OPENCLAW_CONFIG_PATH" in proc.stderr and proc.stderr.count("\n") == 1


def test_unsafe_bind_exits_2_for_serve_and_demo() -> None:
    for command in ("serve", "demo"):
        proc = _run([command, "--host", "0.0.0.0", "--state-dir", STATE][: 3 if command == "demo" else 5])
        assert proc.returncode == 2, (command, proc.stderr)
        assert "refusing to bind" in proc.stderr and "Traceback" not in proc.stderr


def test_full_disk_is_one_line_not_a_traceback() -> None:
    with open("/dev/full", "w") as full:
        proc = _run(["sessions", "--state-dir", STATE, "--no-cache", "--json"], stdout=full)
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "cannot write" in proc.stderr


def test_exit_codes_table_in_readme() -> None:
    from clawstats.cli import EXIT_CODES

    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in README


def test_alerts_config_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "alerts.toml"
    os.mkfifo(fifo)
    proc = _run(["serve", "--state-dir", STATE, "--no-cache", "--alerts-config", str(fifo)])
    assert proc.returncode == 2, proc.stderr
    assert "cannot read alert rules" in proc.stderr and proc.stderr.count("\n") == 1
