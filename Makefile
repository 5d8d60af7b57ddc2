# fortify — every target bootstraps .venv by itself.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fortify-installed
EXTRAS ?= dev,mlflow,onnx,serve,serve-test,privacy

.PHONY: demo test test-slow bench lint typecheck docs data venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# torch first: the local CPU wheel, never a CUDA build resolved by pip, never torchvision.
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "torch==2.13.0"
	@# pin the torch we have and forbid torchvision, so no later install can swap torch for a CUDA build
	@$(PY) -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/constraints.txt
	@echo "torchvision==0.0.0.dev0" >> $(VENV)/constraints.txt
	@printf '[global]\nconstraint = %s\n' "$(abspath $(VENV))/constraints.txt" > $(VENV)/pip.conf
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@# onnx2torch declares torchvision but needs it only for two detection operators
	$(PY) -m pip install --quiet --no-deps "onnx2torch>=1.5"
	@touch $(STAMP)

data:
	@bash scripts/ensure-data.sh

demo: $(STAMP) data
	$(VENV)/bin/fortify demo

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP) data
	$(PY) -m pytest -q -m slow

bench: $(STAMP) data
	$(PY) -m pip install --quiet -e ".[bench]"
	@# torchattacks declares torchvision (never imported); install it without its declared deps.
	$(PY) -m pip install --quiet --no-deps "torchattacks>=3.5"
	$(PY) bench/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples

# mypy on src/ (settings in pyproject.toml: every `# type: ignore` must still be needed)
typecheck: $(STAMP)
	$(PY) -m mypy

# the API reference from the docstrings (mkdocs.yml, docs/); --strict: a broken reference fails the build
docs: $(STAMP)
	@$(PY) -c "import mkdocstrings_handlers.python" 2>/dev/null || $(PY) -m pip install --quiet -e ".[docs]"
	$(VENV)/bin/mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) runs site .pytest_cache
