# Two commands do all set-up on a fresh machine:
#   make demo   - virtualenv, install, serve a replay of bundled real OpenClaw data on :18780
#   make test   - install dev dependencies (and Debian's packages the tests drive), run the whole suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install demo serve test check lint system-deps bench fuzz reliability clean conformance

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -U pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/clawstats demo

serve: install
	$(BIN)/clawstats serve

# Debian packages the tests drive for real: chromium (browser tests), prometheus + promtool (fleet),
# faketime (the clock-dependent tests again, a year ahead), pipx and systemd-analyze (install paths),
# podman + runc + mmdebstrap (the container image, built on a Debian base made from packages).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v time >/dev/null 2>&1 || [ -x /usr/bin/time ] || missing="$$missing time"; \
	command -v faketime >/dev/null 2>&1 || missing="$$missing faketime"; \
	command -v pipx >/dev/null 2>&1 || missing="$$missing pipx"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	for tool in podman runc mmdebstrap; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian's$$missing for the tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends$$missing >/dev/null; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The clock-dependent tests run a second time with the wall clock a year ahead (monotonic time
# untouched, so waits and timeouts behave): no test may pass only near the day its data was written.
test: install system-deps lint
	$(BIN)/python -m pytest
	FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f +365d $(BIN)/python -m pytest -m clock -p no:cacheprovider -q

# The conformance suite alone (also part of make test): the real OpenClaw 2026.7.1 and 2026.9.6
# gateways offline (Node and OpenClaw installed once from the npm registry into
# $${CLAWSTATS_CONFORMANCE_CACHE:-~/.cache/clawstats-conformance}); docs/CONFORMANCE.md.
conformance: install
	$(BIN)/python -m pytest -m conformance tests/conformance

bench: install system-deps
	$(BIN)/python bench/run.py --size small --runs 3
	$(BIN)/python bench/live.py --sizes small --appends 50
	$(BIN)/python bench/api_latency.py --requests 1000 --appends 30

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts

fuzz: install
	mkdir -p fuzz/.corpus
	$(BIN)/python fuzz/fuzz_parsers.py -max_total_time=600 fuzz/.corpus fuzz/seeds

# The long versions of the reliability runs (docs/RELIABILITY.md): fault storms 10x, 200 SSE
# clients for 60 s, more fuzzing examples, 5 minutes of coverage-guided fuzzing.
reliability: install system-deps
	STORM_SCALE=10 LOAD_CLIENTS=200 LOAD_SECONDS=60 HYPOTHESIS_PROFILE=long \
	  $(BIN)/python -m pytest -s tests/test_faults.py tests/test_load.py tests/test_fuzz.py tests/test_schemathesis.py
	mkdir -p fuzz/.corpus
	$(BIN)/python fuzz/fuzz_parsers.py -max_total_time=300 fuzz/.corpus fuzz/seeds
