# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint clean chromium

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/i2i demo

test: $(STAMP) chromium
	$(BIN)/ruff check i2i tests apps
	$(BIN)/python -m pytest -q --durations=10

# The web app's browser tests drive Debian's chromium through Playwright (never `playwright install`).
# Installed here when missing (as root, else with sudo); skipped at once when /usr/bin/chromium exists.
chromium:
	@test -x /usr/bin/chromium || { \
	  sudo=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	  || echo "warning: could not install chromium; the browser tests will be skipped"; }

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check i2i tests
	$(BIN)/ruff format --check i2i tests

clean:
	rm -rf $(VENV) runs
