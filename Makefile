# `make demo`: set up (first time) and run the whole pipeline on data/demo.
# `make test`: lint, then the test suite.
# `make review REV=main`: what the workspace changed against REV, in review/report.md.
VENV := .venv
REV ?= main
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test review setup

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

review: setup
	python -m imgclf.review --rev $(REV) --out review
