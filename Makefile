# `make demo`: set up (first time) and run the whole pipeline on data/demo.
# `make test`: lint, then the test suite.
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test setup

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

demo: setup
	dvc repro

test: setup
	ruff check .
	ruff format --check .
	pytest
