# The commands a newcomer runs (README.md):
#   make tour   set up .venv and run `minivision tour` on the default image
#   make lab    set up .venv with the notebooks extra and open the lessons in JupyterLab
#   make test   set up .venv with the test extra and run every test, notebooks included
#   make site   execute every notebook and render the course as HTML pages in site/
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: tour lab site test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed-base

$(VENV)/.installed-notebooks: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[notebooks]"
	touch $@ $(VENV)/.installed-base

tour: $(VENV)/.installed-base
	$(BIN)/minivision tour

lab: $(VENV)/.installed-notebooks
	$(BIN)/jupyter lab --notebook-dir=notebooks

site: $(VENV)/.installed-notebooks
	$(BIN)/python tools/build_site.py --out site

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest --nbmake tests notebooks

bench: $(VENV)/.installed-test
	$(BIN)/python -m minivision bench

clean:
	rm -rf $(VENV) minivision-tour site .pytest_cache .hypothesis
