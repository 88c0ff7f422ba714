# txlab: `make run` and `make test` work on a fresh machine with Python 3.10+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test browser lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install txlab with its test and lint tools

run: install  ## the main job: concurrent bank transfers at SERIALIZABLE on the embedded server
	$(BIN)/txlab run bank-transfer --isolation serializable

test: install browser  ## the test suite against a real PostgreSQL (embedded, or TXLAB_TEST_DSN)
	$(BIN)/python -m pytest

# The HTML pages are tested in a real headless Chromium (tests/test_html_browser.py):
# Debian's package, driven by Playwright. As root (CI) it is installed here; otherwise
# this says how to get it and stops, rather than letting the tests skip silently.
browser:  ## make sure Chromium is there for the browser tests (installs it when root)
	@if [ -n "$$TXLAB_CHROMIUM" ] || command -v chromium >/dev/null 2>&1 \
	    || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing Chromium for the browser tests (apt-get install chromium)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	    >/dev/null || exit 1; \
	else \
	  echo "make: the browser tests (tests/test_html_browser.py) need Chromium, which is not"; \
	  echo "      installed. Install it with: sudo apt-get install chromium  (Debian/Ubuntu),"; \
	  echo "      or set TXLAB_CHROMIUM=/path/to/chromium-or-chrome, then run make test again."; \
	  exit 1; \
	fi

lint: install
	$(BIN)/ruff check txlab scenarios tests bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
