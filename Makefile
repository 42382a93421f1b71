# Two commands on a fresh machine:  `make bench` (the quick benchmark) and `make test`.
# Both create .venv and install qllm with the pinned stack on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench test install lab clean

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

clean:
	rm -rf $(VENV) results runs
