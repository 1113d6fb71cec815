"""The README keeps up with the code: every flag, env var, route and row field is documented."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from clawstats.api.app import create_app
from clawstats.core.session import SessionRow
from clawstats.settings import ALL_OPTIONS, Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("option", ALL_OPTIONS, ids=lambda o: o.flag)
def test_every_flag_and_env_var_is_documented(option: object) -> None:
    assert f"`{option.flag}`" in README  # type: ignore[attr-defined]
    if option.env:  # type: ignore[attr-defined]
        assert f"`{option.env}`" in README  # type: ignore[attr-defined]


def test_every_route_is_documented() -> None:
    app = create_app(Settings(), None)
    paths = {re.sub(r"\{(\w+):\w+\}", r"{\1}", getattr(route, "path", "")) for route in app.routes}
    assert len(paths) >= 12
    for path in paths:
        assert f"`GET {path}" in README or f"`{path}`" in README, path


def test_every_row_field_is_documented() -> None:
    schema = msgspec.json.schema(SessionRow)
    fields = schema["$defs"]["SessionRow"]["properties"]
    for name in fields:
        assert f"`{name}`" in README, name


def test_cli_commands_are_documented() -> None:
    for command in ("sessions", "usage", "serve", "demo", "check"):
        assert f"clawstats {command}" in README
