# tracescan — every target bootstraps what it needs (Debian packages, venv, Python deps).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SRC := agent central drivers hardware_sim

.PHONY: demo test lint format bench system-deps venv clean install uninstall

demo: system-deps $(STAMP)
	$(PY) -m hardware_sim demo

test: system-deps $(STAMP) lint
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check $(SRC) tests $(wildcard bench)
	$(VENV)/bin/ruff format --check $(SRC) tests $(wildcard bench)
	$(VENV)/bin/mypy --strict $(SRC)
	$(VENV)/bin/mypy --strict tests $(wildcard bench)
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format $(SRC) tests $(wildcard bench)
	$(VENV)/bin/ruff check --fix $(SRC) tests $(wildcard bench)

bench: system-deps $(STAMP)
	$(PY) -m bench

system-deps:
	@scripts/ensure-system-deps

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info

# --- Running as a service (README "Running as a service"); run as root --------------------
PREFIX ?= /opt/tracescan
UNIT_DIR ?= /etc/systemd/system
UDEV_DIR ?= /etc/udev/rules.d

install:
	@test "$$(id -u)" = 0 || { echo "make install: run as root (sudo make install)"; exit 1; }
	getent group tracescan >/dev/null || groupadd --system tracescan
	getent passwd tracescan >/dev/null || useradd --system --gid tracescan \
		--home-dir /var/lib/tracescan --no-create-home --shell /usr/sbin/nologin tracescan
	for g in dialout input video audio; do \
		if getent group $$g >/dev/null; then usermod -a -G $$g tracescan; fi; done
	test -x $(PREFIX)/bin/python || $(PYTHON) -m venv $(PREFIX)
	$(PREFIX)/bin/pip install -q --upgrade .
	ln -sf $(PREFIX)/bin/tracescan /usr/local/bin/tracescan
	install -d -m 0750 -o root -g tracescan /etc/tracescan
	install -d -m 0700 -o tracescan -g tracescan /etc/tracescan/keys
	install -d -m 0710 -o tracescan -g tracescan /var/lib/tracescan
	test -e /etc/tracescan/tracescan.toml || \
		install -m 0640 -o root -g tracescan config/tracescan.toml /etc/tracescan/tracescan.toml
	install -D -m 0644 systemd/tracescan.service $(UNIT_DIR)/tracescan.service
	install -D -m 0644 config/udev/60-tracescan-scanners.rules $(UDEV_DIR)/60-tracescan-scanners.rules
	install -D -m 0644 README.md /usr/local/share/doc/tracescan/README.md
	if [ -d /run/systemd/system ]; then \
		udevadm control --reload-rules 2>/dev/null || true; \
		systemctl daemon-reload && systemctl enable tracescan.service && \
		echo "edit /etc/tracescan/tracescan.toml, then: systemctl start tracescan"; \
	else echo "systemd is not running here: unit installed, not enabled"; fi

# Removes the program and the unit. Keeps /var/lib/tracescan, /etc/tracescan (keys!) and the
# user: trace records must not be deleted (the regime forbids it), and without the keys the
# stored records can no longer be read.
uninstall:
	@test "$$(id -u)" = 0 || { echo "make uninstall: run as root"; exit 1; }
	if [ -d /run/systemd/system ]; then systemctl disable --now tracescan.service || true; fi
	rm -f $(UNIT_DIR)/tracescan.service $(UDEV_DIR)/60-tracescan-scanners.rules
	rm -f /usr/local/bin/tracescan
	rm -rf $(PREFIX) /usr/local/share/doc/tracescan
	if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "kept /var/lib/tracescan, /etc/tracescan and user tracescan (records and keys)"
