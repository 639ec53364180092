# genzoo: the two quick-start commands of the README.
#   make pipeline   install into .venv, then run the default pipeline to reports/all.html
#   make test       install into .venv (with test extras), then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: install pipeline test clean

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[pipeline,test]'
	touch $@

install: $(BIN)/snakemake

pipeline: install
	PATH="$(CURDIR)/$(BIN):$$PATH" snakemake --cores all reports/all.html

test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

clean:
	rm -rf data reports logs .snakemake
