# Two-command quick start: `make fit` and `make test` install into .venv when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# One torch thread per test worker: two busy threads per core make CPU training many times slower.
TEST_WORKERS ?= 2

.PHONY: install fit test lint clean

install: $(STAMP)

# torch and torchvision go in first, pinned to a pair that lies on this machine's disk
# (a CUDA build: the same environment trains on a GPU machine). timm (model=timm) needs
# torchvision, and torchvision needs the torch build it was made for; any other spec
# downloads gigabytes. The project then finds both satisfied.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

fit: $(STAMP)
	$(BIN)/dltrain fit

test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check dltrain configs tests hydra_plugins benchmarks
	$(BIN)/ruff format --check dltrain configs tests hydra_plugins benchmarks

clean:
	rm -rf $(VENV) runs outputs multirun build dist *.egg-info .pytest_cache .ruff_cache lightning_logs
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
