# The two commands a newcomer runs (README.md):
#   make tour   set up .venv and run `minivision tour` on the default image
#   make test   set up .venv with the test extra and run every test, notebooks included
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: tour test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed-base

tour: $(VENV)/.installed-base
	$(BIN)/minivision tour

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest --nbmake tests notebooks

bench: $(VENV)/.installed-test
	$(BIN)/python -m minivision bench

clean:
	rm -rf $(VENV) minivision-tour .pytest_cache .hypothesis
