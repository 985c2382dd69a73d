# Fresh-machine entry points (see README.md). Everything runs in ./.venv, created here.
VENV       ?= .venv
PYTHON     ?= python3
# CPU build of torch from the local wheel cache; on a CUDA machine use e.g. `make TORCH_SPEC=torch ...`
TORCH_SPEC ?= torch==2.13.0
PY          = $(VENV)/bin/python
PIP         = $(PY) -m pip --disable-pip-version-check -q

.PHONY: setup quickstart test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e ".[test]"
	touch $@

quickstart: setup
	$(VENV)/bin/ecad-hub quickstart

test: setup
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
