# Two commands: `make demo` and `make test`. Both set up .venv first (torch pinned before anything else,
# so pip takes the local CPU wheel instead of several GB of CUDA packages).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.xstilts-installed

.PHONY: demo align-demo robustness-demo robust-training-demo multilingual-demo test install lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[offline,test,words,tracking]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/xstilts run configs/demo.yaml

align-demo: $(STAMP)
	$(BIN)/xstilts align configs/align_demo.yaml
	$(BIN)/xstilts report runs/align-demo

robust-training-demo: $(STAMP)
	$(BIN)/xstilts attack configs/robust_training_demo.yaml
	$(BIN)/xstilts report runs/robust-training-demo

multilingual-demo: $(STAMP)
	$(BIN)/xstilts run configs/multilingual_demo.yaml

robustness-demo: $(STAMP)
	$(BIN)/xstilts attack configs/robustness_demo.yaml
	$(BIN)/xstilts report runs/robustness-demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) runs
