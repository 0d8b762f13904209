# `make demo`: set up (first time) and run the whole pipeline on data/demo.
# `make test`: lint, then the test suite in two processes (installing Debian's chromium first
#   where it is missing).
# `make review REV=main`: what the workspace changed against REV, in review/report.md.
# `make exps`: the experiments side by side, the parameters that differ and each model's
#   test accuracy (`dvc exp show --only-changed` with the other metrics and the deps dropped).
VENV := .venv
REV ?= main
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test review setup exps chromium

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

demo: setup
	dvc repro

test: setup chromium
	ruff check .
	ruff format --check .
	pytest -n 2 --dist worksteal

review: setup
	python -m imgclf.review --rev $(REV) --out review

EXP_COLUMNS_DROPPED := ((predict_|test_|train_)?images|images\..*|rejected|hidden_skipped|almost_black|classes|imbalance|exact_.*|label_conflicts|near_.*|leakage_groups|(scratch|transfer)\.(kept_epoch|epochs_trained|(train|val)_(loss|acc))|(scratch|transfer|ensemble)\.test_(acc_low|acc_high|f1|loss)|submission\.(images|scored|scored_images|acc)|export\..*|.*/.*|State|Executor)$$
exps:
	dvc exp show --only-changed --drop '$(EXP_COLUMNS_DROPPED)'

# The plots page test draws `dvc plots show` in headless Chromium (Debian's package).
chromium:
	@command -v chromium >/dev/null || { \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		echo "installing Debian's chromium for the plots page test"; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; }
