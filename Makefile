# otwatch: `make demo` and `make test` set up everything they need on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# System tools the tests and the demo use: tshark/capinfos (peer decoder and packet counts), promtool and prometheus,
# mosquitto (and mosquitto_passwd), tcpdump, setpriv (util-linux, capability tests), ip (iproute2), openssl (test CAs).
APT_PACKAGES := tshark tcpdump prometheus mosquitto mosquitto-clients iproute2 util-linux libcap2-bin openssl debootstrap
SYSTEM_TOOLS := tshark capinfos tcpdump promtool prometheus mosquitto mosquitto_passwd ip setpriv openssl debootstrap
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_DIR ?= out/demo
DEMO_ARGS ?=

.PHONY: setup system venv test lint pytest demo demo-offline bench eval clean

setup: system venv

system:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages (missing:$$missing)"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

test: setup lint pytest

demo: setup
	@echo "== a small data-center site live on loopback, otwatch watching it, an intrusion played against it"
	$(SUDO) $(BIN)/python -m simulators.demo $(DEMO_ARGS)

demo-offline: setup
	rm -rf $(DEMO_DIR)
	@echo "== simulating two days of the small site with the VPN intrusion continued into OT (seeded)"
	$(BIN)/otwatch simulate --profile simulators/profiles/site-small.yml --days 2 --seed 7 --scenario simulators/profiles/scenarios/vpn-intrusion-ot.yml --out $(DEMO_DIR)/site
	$(BIN)/otwatch replay $(DEMO_DIR)/site/site.pcap --config $(DEMO_DIR)/site/zones.yml --out $(DEMO_DIR)/logs/site --state $(DEMO_DIR)/state
	@echo "== alerts"
	@cut -c1-220 $(DEMO_DIR)/logs/site/alerts.jsonl || true
	@echo "== inventory"
	$(BIN)/otwatch inventory --config $(DEMO_DIR)/site/zones.yml --state $(DEMO_DIR)/state

# both benchmarks run; the exit status is the replay bench's (its checks), or the scrape bench's if that fails
bench: setup
	@$(BIN)/python tests/bench/run_bench.py; status=$$?; \
	echo "== /metrics: one scrape at 1,000 and 10,000 assets"; \
	$(BIN)/python tests/bench/scrape_bench.py && exit $$status

# every scenario of simulators/profiles/scenarios against the sensor: the detection table and its targets
eval: setup
	$(BIN)/otwatch evaluate $(EVAL_ARGS)

clean:
	rm -rf $(VENV) out bench-data .mypy_cache .ruff_cache .pytest_cache
