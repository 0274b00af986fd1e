# otwatch: `make demo` and `make test` set up everything they need on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# System tools the tests and the demo use: tshark/capinfos (peer decoder and packet counts), promtool and prometheus,
# mosquitto (and mosquitto_passwd), tcpdump, setpriv (util-linux, capability tests), ip (iproute2), openssl (test CAs).
APT_PACKAGES := tshark tcpdump prometheus mosquitto mosquitto-clients iproute2 util-linux libcap2-bin openssl
SYSTEM_TOOLS := tshark capinfos tcpdump promtool prometheus mosquitto mosquitto_passwd ip setpriv openssl
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_DIR ?= out/demo
DEMO_CONFIG := simulators/profiles/demo-zones.yml

.PHONY: setup system venv test lint pytest demo bench clean

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
	rm -rf $(DEMO_DIR)
	@echo "== generating a simulated data-center capture (seeded: PLCs, BMS, MQTT cameras, DNS, IT noise)"
	$(BIN)/python -m simulators.mixed_capture $(DEMO_DIR)/site.pcap --packets 100000 --seed 7
	$(BIN)/otwatch replay $(DEMO_DIR)/site.pcap --config $(DEMO_CONFIG) --out $(DEMO_DIR)/logs/site --state $(DEMO_DIR)/state
	@echo "== replaying bundled real captures (Zeek, ITI, Arkime traces)"
	$(BIN)/otwatch replay tests/traces/zeek/modbusBig.pcap --config $(DEMO_CONFIG) --out $(DEMO_DIR)/logs/modbusBig --state $(DEMO_DIR)/state --no-progress
	$(BIN)/otwatch replay tests/traces/icsst/modbus_test.pcap --config $(DEMO_CONFIG) --out $(DEMO_DIR)/logs/modbus_test --state $(DEMO_DIR)/state --no-progress
	$(BIN)/otwatch replay tests/traces/arkime/modbus.pcap --config $(DEMO_CONFIG) --out $(DEMO_DIR)/logs/arkime --state $(DEMO_DIR)/state --no-progress
	@echo "== inventory"
	$(BIN)/otwatch inventory --config $(DEMO_CONFIG) --state $(DEMO_DIR)/state

bench: setup
	$(BIN)/python tests/bench/run_bench.py

clean:
	rm -rf $(VENV) out bench-data .mypy_cache .ruff_cache .pytest_cache
