# meshscope: every target installs what it needs first, so a fresh machine only needs Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install sysdeps up test bench clean help

help:
	@echo "make up     install if needed, then run the bundled mesh with the UI (http://127.0.0.1:8050)"
	@echo "make test   install if needed, then run the whole test suite"
	@echo "make bench  install if needed, then run the benchmarks"

install: $(STAMP) sysdeps

# Re-installs only when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

# Debian packages the tests drive for real (Chromium, Prometheus, Alertmanager, pdftoppm).
sysdeps:
	@bash scripts/install-system-deps.sh

up: $(STAMP)
	$(BIN)/meshscope up

test: install
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
