"""The container image (``Dockerfile``) built and run by a real engine: Debian's podman with runc.

No image registry is reachable from CI, so the base image is built from Debian packages
(``mmdebstrap``: python3 and its venv module, like ``python:3.11-slim-bookworm``) and imported
once; it is kept in podman storage under ``~/.cache/clawstats-podman`` keyed by a hash of its
recipe, so later runs start from it. pip in the build stage gets an offline wheelhouse made
here from this machine's pip index and cache (``PIP_NO_INDEX``/``PIP_FIND_LINKS`` build args).

The image runs as a user would run it beside a gateway: state mounted read-only, a named cache
volume, a token, a read-only root file system; its ``/api/sessions`` serves the same rows as
this checkout's engine on the same data, and its ``HEALTHCHECK`` runs from outside.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import REAL_SQLITE, SMALL_STATE
from tests.servers import served_cost, wait_served_cost
from tests.watch.test_readonly import OPS_DB, QUICK, _append_cost, _open_writer

ROOT = Path(__file__).parent.parent
STORE = Path.home() / ".cache" / "clawstats-podman"
# podman's run root holds sockets, so a short path under the temp dir; its storage (STORE) records
# this path, so it must not change between runs.
RUNROOT = Path(tempfile.gettempdir()) / "clawstats-podman-run"
TOKEN = "container-test-token"
BASE_RECIPE = [
    "--variant=essential",
    "--include=python3,python3-venv,ca-certificates",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "bookworm",
]
TOOLS = ("podman", "runc", "mmdebstrap")
pytestmark = [
    pytest.mark.timeout(1200),
    pytest.mark.skipif(
        any(shutil.which(tool) is None for tool in TOOLS) or os.geteuid() != 0,
        reason="needs root and Debian's podman, runc and mmdebstrap (make system-deps installs them)",
    ),
]


def podman(*args: str, check: bool = True, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    cmd = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
    cmd += ["--root", str(STORE / "storage"), "--runroot", str(RUNROOT), *args]
    env = {**os.environ, "CONTAINERS_CONF": str(STORE / "containers.conf")}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    if check:
        assert done.returncode == 0, f"{' '.join(args[:3])} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="session")
def base_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Debian base, built and imported once per recipe."""
    STORE.mkdir(parents=True, exist_ok=True)
    # Default ulimits would ask runc for limits this kernel's sandbox refuses.
    (STORE / "containers.conf").write_text("[containers]\ndefault_ulimits = []\n")
    tag = "localhost/clawstats-test-base:" + hashlib.sha256(json.dumps(BASE_RECIPE).encode()).hexdigest()[:16]
    if podman("image", "exists", tag, check=False).returncode != 0:
        tar = tmp_path_factory.mktemp("base") / "base.tar"
        done = subprocess.run(["mmdebstrap", "-q", *BASE_RECIPE, str(tar)], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        try:
            podman("import", str(tar), tag)
        finally:
            tar.unlink()
    return tag


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of every dependency and of the build backend, for an offline ``pip install /src``."""
    out = tmp_path_factory.mktemp("wheelhouse")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "clawstats", src / "clawstats", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip"]
    for cmd in (
        [*pip, "wheel", "-q", "-w", str(out), str(src)],
        [*pip, "download", "-q", "--only-binary", ":all:", "-d", str(out), "setuptools>=69", "wheel"],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=src)
        assert done.returncode == 0, done.stderr[-3000:]
    for built in out.glob("clawstats-*.whl"):
        built.unlink()  # the image builds clawstats from its sources, as a user's build does
    return out


@pytest.fixture(scope="session")
def image(base_image: str, wheelhouse: Path) -> Iterator[str]:
    tag = f"localhost/clawstats-test:{uuid.uuid4().hex[:12]}"
    podman(
        # docker format: OCI images have no HEALTHCHECK; no layer cache: no stage images left behind
        "build", "-q", "--format", "docker", "--layers=false",
        "--build-arg", f"BASE={base_image}",
        "--build-arg", "PIP_NO_INDEX=1", "--build-arg", "PIP_FIND_LINKS=/wheels",
        "--volume", f"{wheelhouse}:/wheels:ro",
        "-t", tag, str(ROOT),
    )  # fmt: skip
    yield tag
    podman("rmi", "-f", tag, check=False)


def _read_only(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


def _tree(root: Path) -> dict[str, tuple[int, int, int, str]]:
    found: dict[str, tuple[int, int, int, str]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        found[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns, st.st_mode, digest)
    return found


def _engine_rows(state: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "clawstats", "sessions", "--json", "--no-cache", "--state-dir", str(state)]
    body = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60, cwd=ROOT).stdout)
    return {"sessions": body["sessions"], "totals": body["totals"]}


class Running:
    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url


@pytest.fixture
def run_container(image: str) -> Iterator[Any]:
    names: list[str] = []
    volumes: list[str] = []

    def run(state: Path, volume: str, user: str | None = None) -> Running:
        if volume not in volumes:
            podman("volume", "create", volume)
            volumes.append(volume)
        name = f"clawstats-test-{uuid.uuid4().hex[:8]}"
        names.append(name)
        podman(
            "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
            "-p", "127.0.0.1::18780", "-v", f"{state}:/state:ro", "-v", f"{volume}:/cache",
            "-e", f"CLAWSTATS_TOKEN={TOKEN}", *(["--user", user] if user else []), image,
        )  # fmt: skip
        port = podman("port", name, "18780").stdout.strip().rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        last: object = None
        while time.monotonic() < deadline:  # readiness: /healthz answers 200 after the first scan
            try:
                response = httpx.get(url + "/healthz", timeout=2.0)
                last = (response.status_code, response.text[:300])
                if response.status_code == 200:
                    return Running(name, url)
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.2)
        logs = podman("logs", name, check=False)
        raise AssertionError(f"container never became ready; last answer {last!r}; logs:\n{logs.stderr[-2000:]}")

    yield run
    for name in names:
        podman("rm", "-f", "-t", "0", name, check=False)
    for volume in volumes:
        podman("volume", "rm", "-f", volume, check=False)


def _sessions(url: str) -> dict[str, Any]:
    response = httpx.get(url + "/api/sessions", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10.0)
    assert response.status_code == 200, response.text
    body = response.json()
    return {"sessions": body["sessions"], "totals": body["totals"]}


@pytest.mark.parametrize("layout", ["file", "sqlite"])
def test_image_serves_a_read_only_state_beside_the_gateway(layout: str, tmp_path: Path, run_container: Any) -> None:
    source = SMALL_STATE if layout == "file" else REAL_SQLITE / "state"
    shutil.copytree(source, tmp_path / "reference")
    expected = _engine_rows(tmp_path / "reference")
    state = tmp_path / "state"
    shutil.copytree(source, state)
    _read_only(state)
    before = _tree(state)
    volume = f"clawstats-test-cache-{uuid.uuid4().hex[:8]}"
    first = run_container(state, volume)
    assert _sessions(first.url) == expected
    assert httpx.get(first.url + "/api/sessions", timeout=10.0).status_code == 401  # the token is required
    assert podman("healthcheck", "run", first.name, check=False).returncode == 0
    assert podman("stop", "-t", "20", first.name).returncode == 0
    assert podman("inspect", "--format", "{{.State.ExitCode}}", first.name).stdout.strip() == "0"
    cache = Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip())
    assert list(cache.glob("index-*")), f"no index in the cache volume: {list(cache.iterdir())}"
    second = run_container(state, volume)  # a restart on the same cache volume: warm
    assert _sessions(second.url) == expected
    assert _tree(state) == before


def test_gateway_writing_beside_the_container_as_the_gateways_uid(tmp_path: Path, run_container: Any) -> None:
    """A writer holds the database (its -wal/-shm exist) while the image, as the compose file runs
    it (``user: 1000:1000``), reads through the read-only mount; the writer stops and removes them."""
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    for path in [state, *state.rglob("*")]:
        os.chown(path, 1000, 1000)  # the gateway's files, private to it as OpenClaw keeps them
        path.chmod(0o700 if path.is_dir() else 0o600)
    database = state / OPS_DB
    writer = _open_writer(database)
    try:
        _append_cost(writer, 0.5)
        os.chown(f"{database}-wal", 1000, 1000)
        os.chown(f"{database}-shm", 1000, 1000)
        running = run_container(state, f"clawstats-test-cache-{uuid.uuid4().hex[:8]}", user="1000:1000")
        start = _quick_cost(running.url)
        _append_cost(writer, 0.25)
        _wait_cost(running.url, start + 0.25)
    finally:
        writer.close()
    assert not Path(f"{database}-wal").exists() and not Path(f"{database}-shm").exists()
    assert podman("healthcheck", "run", running.name, check=False).returncode == 0
    _wait_cost(running.url, start + 0.25)


def _quick_cost(url: str) -> float:
    return served_cost(url, QUICK, TOKEN)


def _wait_cost(url: str, want: float) -> None:
    wait_served_cost(url, QUICK, want, TOKEN)


def test_health_check_fails_when_the_store_cannot_be_read(tmp_path: Path, run_container: Any) -> None:
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    _read_only(state)
    (state / "agents/ops/agent/openclaw-agent.sqlite").chmod(0o000)  # not readable by the image's user
    running = run_container(state, f"clawstats-test-cache-{uuid.uuid4().hex[:8]}")
    health = httpx.get(running.url + "/healthz", timeout=10.0).json()
    assert health["status"] == "degraded", health
    assert podman("healthcheck", "run", running.name, check=False).returncode != 0


def test_image_is_small_non_root_and_has_no_build_tools(image: str, base_image: str) -> None:
    config = json.loads(podman("image", "inspect", image).stdout)[0]
    assert config["Config"]["User"] == "10001:10001"
    assert "urllib.request" in " ".join(config["Healthcheck"]["Test"]), config.get("Healthcheck")
    tools = (
        "import shutil; print(json.dumps([t for t in ('pip', 'pip3', 'gcc', 'cc', 'make', 'curl') if shutil.which(t)]))"
    )
    found = podman("run", "--rm", "--entrypoint", "python3", image, "-c", "import json; " + tools).stdout
    assert json.loads(found) == []
    sizes = [int(podman("image", "inspect", "--format", "{{.Size}}", name).stdout) for name in (image, base_image)]
    added_mb = (sizes[0] - sizes[1]) / 1e6
    assert added_mb < 80, f"clawstats adds {added_mb:.0f} MB to the base image"


def test_compose_example_mounts_state_read_only_with_a_named_cache() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    service = compose["services"]["clawstats"]
    (gateway_state,) = compose["services"]["openclaw-gateway"]["volumes"]
    mounts = {mount["target"]: mount for mount in service["volumes"]}
    assert mounts["/state"]["type"] == "bind" and mounts["/state"]["read_only"] is True
    assert mounts["/state"]["source"] == gateway_state["source"]  # the gateway's own state dir
    # at the same path in both containers (the rows' sessionFile paths name the same files)
    assert gateway_state["target"] == compose["services"]["openclaw-gateway"]["environment"]["OPENCLAW_STATE_DIR"]
    assert gateway_state["target"] == "/state"
    assert mounts["/cache"]["type"] == "volume" and mounts["/cache"]["source"] in compose["volumes"]
    assert set(mounts) == {"/state", "/cache"}  # nothing else to write to: the root fs is read-only
    assert service["read_only"] is True and "CLAWSTATS_TOKEN" in service["environment"]
