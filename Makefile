# Two commands do all the set-up on a fresh machine: `make quickstart` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install system-deps quickstart test bench clean

install: system-deps $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

# Re-run only when the dependencies change; torch comes first, from the CPU wheel, and
# constraints.txt stops anything from replacing it. openWakeWord's wheel is installed without its
# dependencies (tflite-runtime among them): only its two speech-embedding ONNX files are used
# (features.kind=speech_embedding, audiorec/pretrained.py).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[train,serve,dev]'
	$(PY) -m pip install --quiet --no-deps openwakeword==0.5.1
	touch $(STAMP)

quickstart: install
	$(VENV)/bin/audiorec quickstart

test: install
	$(PY) -m pytest

bench: install
	$(PY) benchmarks/train_commands.py

clean:
	rm -rf $(VENV) quickstart .pytest_cache
