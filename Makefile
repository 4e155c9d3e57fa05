# The two quick-start commands: `make demo` (set up, run the appliance against the simulator)
# and `make test` (set up, run the tests). Both create .venv when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean native

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# the compiled hot path (setup.py), rebuilt in place for whatever changed since the last build
# (a no-op of a second when nothing did)
native: $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace

demo: native
	$(BIN)/tickring run $(ARGS)

test: native
	$(BIN)/python -m pytest -q $(ARGS)

bench: native
	$(BIN)/tickring bench ring

clean:
	rm -rf $(VENV) build *.egg-info
	find shm feeds -name '*.so' -delete
