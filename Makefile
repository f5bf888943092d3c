# Two commands on a fresh Debian machine:
#   make bench   sets everything up, then runs `harness bench --algo all`
#   make test    sets everything up, then runs lint, types and the whole test suite
# Everything else a user needs is in docs/ (README.md links every page).

VENV      ?= .venv
PYTHON    ?= python3
BIN       := $(VENV)/bin
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages venv bench test lint benchmarks clean docker-engine docker-engine-stop fuzz docs

# The harness's own Docker engine: no bridge and no iptables rules of its own (containers
# use the host's network on loopback), its own socket and data directory.
ENGINE_DIR  := /run/lb-harness-docker
ENGINE_DATA := /var/lib/lb-harness-docker

setup: system-packages venv

# nginx, HAProxy and Caddy (wrk for benchmarks, chromium and its driver for the web UI's browser tests,
# strace for the test that nginx -t of a user's config opens nothing outside the run)
# from the distribution's packages, only when missing.
# policy-rc.d keeps the package from starting the system nginx on port 80. apt's output is kept
# in a log and shown only when it explains a failure.
system-packages:
	@missing=""; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v caddy >/dev/null 2>&1 || [ -x /usr/bin/caddy ] || missing="$$missing caddy"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	[ -x /usr/sbin/dockerd ] || missing="$$missing docker.io"; \
	[ -x /usr/sbin/debootstrap ] || missing="$$missing debootstrap"; \
	command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing="$$missing nftables"; \
	command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing="$$missing iproute2"; \
	command -v strace >/dev/null 2>&1 || missing="$$missing strace"; \
	if [ -n "$$missing" ]; then \
		log=$$(mktemp /tmp/lb-harness-apt.XXXXXX); \
		printf 'installing system packages:%s ... ' "$$missing"; \
		added_policy=""; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
			$(SUDO) chmod +x /usr/sbin/policy-rc.d; added_policy=1; \
		fi; \
		{ $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } \
			>"$$log" 2>&1; \
		status=$$?; \
		[ -n "$$added_policy" ] && $(SUDO) rm -f /usr/sbin/policy-rc.d; \
		if [ $$status -eq 0 ]; then echo done; rm -f "$$log"; else echo failed; cat "$$log"; rm -f "$$log"; fi; \
		exit $$status; \
	fi

$(BIN)/harness: pyproject.toml
	@printf 'installing the harness and its Python packages into $(VENV) ... '
	@log=$$(mktemp /tmp/lb-harness-pip.XXXXXX); \
	{ $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet --upgrade pip \
		&& $(BIN)/pip install --quiet -e '.[dev]'; } >"$$log" 2>&1 \
		&& { echo done; rm -f "$$log"; } || { echo failed; cat "$$log"; rm -f "$$log"; exit 1; }
	@touch $@

venv: $(BIN)/harness

bench: setup
	$(BIN)/harness bench --algo all

lint: venv
	$(BIN)/ruff check harness tests benchmarks
	$(BIN)/mypy

# The documentation site (docs/, mkdocs.yml) into build/site; a warning fails it.
docs: venv
	$(BIN)/mkdocs build --strict --quiet

# Started for the tests when no engine runs, and stopped after them by its pid.
test: setup lint docs
	@started=""; \
	if [ ! -S $(ENGINE_DIR)/docker.sock ] && [ -x /usr/sbin/dockerd ]; then $(MAKE) --no-print-directory docker-engine && started=1; fi; \
	$(BIN)/pytest; status=$$?; \
	[ -n "$$started" ] && $(MAKE) --no-print-directory docker-engine-stop; \
	exit $$status

docker-engine:
	@$(SUDO) mkdir -p $(ENGINE_DIR)
	@$(SUDO) sh -c 'nohup dockerd --bridge=none --iptables=false --ip6tables=false \
		--host unix://$(ENGINE_DIR)/docker.sock --data-root $(ENGINE_DATA) \
		--exec-root $(ENGINE_DIR)/exec --pidfile $(ENGINE_DIR)/dockerd.pid \
		>$(ENGINE_DIR)/dockerd.log 2>&1 &'
	@for i in $$(seq 1 100); do [ -S $(ENGINE_DIR)/docker.sock ] && DOCKER_HOST=unix://$(ENGINE_DIR)/docker.sock docker info >/dev/null 2>&1 && break; sleep 0.1; done; \
	DOCKER_HOST=unix://$(ENGINE_DIR)/docker.sock docker info >/dev/null 2>&1 \
		&& echo "docker engine up on unix://$(ENGINE_DIR)/docker.sock" \
		|| { echo "the docker engine did not start; see $(ENGINE_DIR)/dockerd.log (the docker tests will be skipped)"; exit 0; }

docker-engine-stop:
	@[ -f $(ENGINE_DIR)/dockerd.pid ] && $(SUDO) kill "$$(cat $(ENGINE_DIR)/dockerd.pid)" || true
	@for i in $$(seq 1 100); do [ -S $(ENGINE_DIR)/docker.sock ] || break; sleep 0.1; done

# The property tests with fresh randomness and many more examples than the suite's
# reproducible run (the profiles are in tests/conftest.py); Hypothesis marks its own tests
# `hypothesis`. Pin what it finds as an @example on the test.
fuzz: venv
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -p no:cacheprovider tests/unit -m hypothesis -q

benchmarks: setup
	$(BIN)/python benchmarks/walking_skeleton.py
	$(BIN)/python benchmarks/replay.py
	$(BIN)/python benchmarks/sessions.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
