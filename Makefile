# Two commands on a fresh machine:  `make bench` (the quick benchmark) and `make test`.
# Both create .venv and install qllm with the pinned stack on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench test install lab torchquantum-env clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

bench: $(STAMP)
	$(BIN)/qllm bench --preset quick

test: $(STAMP)
	$(BIN)/python -m pytest -q --nbmake tests notebooks

# JupyterLab on the repository root (notebooks/, results/, benchmarks/ all browsable), opening
# notebooks/; the notebooks extra installs once (a stamp). Root needs --allow-root (containers).
# Extra flags: make lab LAB_FLAGS="--port 8899 --no-browser".
LAB_STAMP := $(VENV)/.notebooks-installed
LAB_UID ?= $(shell id -u)
LAB_FLAGS ?=
$(LAB_STAMP): $(STAMP) pyproject.toml constraints.txt
	$(BIN)/python -m pip install -c constraints.txt -e ".[dev,notebooks]"
	touch $(LAB_STAMP)

lab: $(LAB_STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --ServerApp.default_url=/lab/tree/notebooks \
		$(if $(filter 0,$(LAB_UID)),--allow-root) $(LAB_FLAGS)

# torchquantum, a benchmark-only peer for benchmarks/engine_speed.py --torchquantum, in its own
# venv: it needs qiskit<1.0, which cannot live next to qllm's qiskit 2.3 (see its requirements.txt).
TQ := benchmarks/torchquantum
torchquantum-env: .venv-tq/.installed
.venv-tq/.installed: $(TQ)/requirements.txt
	$(PYTHON) -m venv .venv-tq
	.venv-tq/bin/python -m pip install -q "torch==2.13.0"
	.venv-tq/bin/python -m pip install -q --no-deps "torchquantum==0.1.8" "torchpack==0.3.1"
	.venv-tq/bin/python -m pip install -q -r $(TQ)/requirements.txt
	touch $@

clean:
	rm -rf $(VENV) .venv-tq results runs
