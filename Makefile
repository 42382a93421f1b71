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

lab: $(STAMP)
	$(BIN)/python -m pip install -c constraints.txt -e ".[dev,notebooks]"
	$(BIN)/jupyter lab notebooks/

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
