# The README's two commands: `make run` and `make test`. Both set up what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: install images image stack stack-down run test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

images: install
	PYTHON_HOST=$(BIN)/python images/build.sh

# The executor's own image (Dockerfile) on the local Python base: README "Run in a container".
image: install
	PYTHON_HOST=$(BIN)/python images/executor.sh

# The fleet's stack (deploy/compose.yaml): PostgreSQL, NODES executors, HAProxy on :8080.
NODES ?= 3
COMPOSE ?= $(shell command -v docker-compose || echo docker compose)
stack: install
	PYTHON_HOST=$(BIN)/python images/stack.sh
	$(COMPOSE) -f deploy/compose.yaml up -d --scale executor=$(NODES)

stack-down:
	$(COMPOSE) -f deploy/compose.yaml down

run: install images
	HOST=$(HOST) PORT=$(PORT) scripts/serve-demo.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install images lint
	$(BIN)/pytest

bench: install images
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
