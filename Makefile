# txlab: `make run` and `make test` work on a fresh machine with Python 3.10+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install txlab with its test and lint tools

run: install  ## the main job: concurrent bank transfers at SERIALIZABLE on the embedded server
	$(BIN)/txlab run bank-transfer --isolation serializable

test: install  ## the test suite against a real PostgreSQL (embedded, or TXLAB_TEST_DSN)
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check txlab scenarios tests bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
