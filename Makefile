# Fresh-machine entry points (see README.md). Everything runs in ./.venv, created here.
VENV       ?= .venv
PYTHON     ?= python3
# CPU build of torch from the local wheel cache; on a CUDA machine use e.g. `make TORCH_SPEC=torch ...`
TORCH_SPEC ?= torch==2.13.0
PY          = $(VENV)/bin/python
PIP         = $(PY) -m pip --disable-pip-version-check -q

# The optional image-reward metric gets its own environment: its torchvision (a CUDA build on PyPI)
# must not sit beside the CPU torch of the main one, where transformers would import it.
IR_VENV    ?= .venv-image-reward
IR_PY       = $(IR_VENV)/bin/python
IR_PIP      = $(IR_PY) -m pip --disable-pip-version-check -q

.PHONY: setup quickstart test test-main lint-imports test-image-reward clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e ".[test,registry]"
	@# the registry app's browser test drives Debian's Chromium (no browser download); it skips without it
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "note: chromium/chromedriver missing: tests/test_registry_app.py will skip"; fi; \
	fi
	touch $@

quickstart: setup
	$(VENV)/bin/ecad-hub quickstart

test: test-main test-image-reward

test-main: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

lint-imports: setup
	$(VENV)/bin/lint-imports

test-image-reward: $(IR_VENV)/.installed
	$(IR_PY) -m pytest tests/test_metric_image_reward.py

$(IR_VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(IR_VENV)
	$(IR_PIP) install --upgrade pip
	printf 'torch==2.13.0\ntorchvision==0.28.0\n' > $(IR_VENV)/torch-pair.txt
	$(IR_PIP) install -c $(IR_VENV)/torch-pair.txt torch torchvision
	$(IR_PIP) install -c $(IR_VENV)/torch-pair.txt -e ".[image-reward]" "pytest>=8"
	touch $@

clean:
	rm -rf $(VENV) $(IR_VENV) build *.egg-info .pytest_cache
