# Two commands on a fresh Debian machine:
#   make bench   sets everything up, then runs `harness bench --algo all`
#   make test    sets everything up, then runs lint, types and the whole test suite
# Everything else a user needs is in README.md.

VENV      ?= .venv
PYTHON    ?= python3
BIN       := $(VENV)/bin
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages venv bench test lint benchmarks clean

setup: system-packages venv

# nginx and HAProxy (wrk for benchmarks, chromium and its driver for the web UI's browser tests)
# from the distribution's packages, only when missing.
# policy-rc.d keeps the package from starting the system nginx on port 80.
system-packages:
	@missing=""; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		added_policy=""; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
			$(SUDO) chmod +x /usr/sbin/policy-rc.d; added_policy=1; \
		fi; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
		status=$$?; \
		[ -n "$$added_policy" ] && $(SUDO) rm -f /usr/sbin/policy-rc.d; \
		exit $$status; \
	fi

$(BIN)/harness: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/harness

bench: setup
	$(BIN)/harness bench --algo all

lint: venv
	$(BIN)/ruff check harness tests benchmarks locustfiles
	$(BIN)/mypy

test: setup lint
	$(BIN)/pytest

benchmarks: setup
	$(BIN)/python benchmarks/walking_skeleton.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
