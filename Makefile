# One entry point for people and CI: README and .ci/run both call these targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The install is editable in "strict" mode: a tree of links to the sources that
# mypy can read. Adding or removing a module changes a package directory's mtime,
# which re-runs the install so the link tree follows.
PACKAGE_DIRS := services $(wildcard services/*/) services/classifier/packs shared
# The installed package runs the sources as they are on disk. The engine
# compiled with mypyc (setup.py, DOHAWATCH_COMPILE=1) is built as a wheel and
# unpacked into COMPILED_TREE, rebuilt when any source changes: the tests check
# it against the sources, and the benchmark measures it.
COMPILED_TREE := .cache/compiled
SOURCES := $(shell find services shared -name '*.py' -o -name '*.yaml' -o -name '*.json')

TOOLS_STAMP := $(VENV)/.tools
# feedparser's own test feeds, from its source distribution on PyPI, for the
# golden test of the fetcher's fast parsing path (tests/unit/test_fetcher_golden.py).
CORPUS := .cache/feedparser-tests
# The official AsyncAPI parser, from the npm registry, for the test that
# validates schemas/asyncapi.yaml.
ASYNCAPI_PARSER := .cache/npm/node_modules/@asyncapi/parser/package.json

.PHONY: tools corpus asyncapi-parser compiled install demo test test-cluster test-fast lint typecheck schemas model eval bench check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml setup.py $(PACKAGE_DIRS)
	find services -name '*.so' -delete; rm -f *__mypyc*.so  # engines an older install compiled in place
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=strict
	touch $@

compiled: $(COMPILED_TREE)/.built

$(COMPILED_TREE)/.built: $(VENV)/.installed setup.py $(SOURCES)
	rm -rf $(COMPILED_TREE) .cache/wheel
	DOHAWATCH_COMPILE=1 $(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir .cache/wheel .
	$(BIN)/python -m zipfile -e .cache/wheel/dohawatch-*.whl $(COMPILED_TREE)
	rm -rf .cache/wheel build/mypyc build/lib* build/temp* build/bdist*
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/dohawatch demo $(ARGS)

# Prometheus and promtool, from Debian's packages, for the monitoring tests.
tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): $(BIN)/python
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus; }
	touch $@

corpus: $(CORPUS)/.fetched

$(CORPUS)/.fetched: $(VENV)/.installed
	rm -rf $(CORPUS) .cache/sdist && mkdir -p .cache/sdist
	version=$$($(BIN)/python -c 'import feedparser; print(feedparser.__version__)') && \
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: -d .cache/sdist "feedparser==$$version" && \
	tar -xzf .cache/sdist/feedparser-$$version.tar.gz -C .cache/sdist && \
	mv .cache/sdist/feedparser-$$version/tests $(CORPUS)
	rm -rf .cache/sdist
	touch $@

asyncapi-parser: $(ASYNCAPI_PARSER)

$(ASYNCAPI_PARSER):
	@command -v npm >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nodejs npm; }
	npm install --silent --no-audit --no-fund --prefix .cache/npm '@asyncapi/parser@3'

test: $(VENV)/.installed $(TOOLS_STAMP) $(CORPUS)/.fetched $(COMPILED_TREE)/.built $(ASYNCAPI_PARSER)
	$(BIN)/python -m pytest $(ARGS)

test-cluster: $(VENV)/.installed $(TOOLS_STAMP) $(CORPUS)/.fetched $(COMPILED_TREE)/.built $(ASYNCAPI_PARSER)
	$(BIN)/python -m pytest -m cluster $(ARGS)

test-fast: $(VENV)/.installed $(TOOLS_STAMP) $(CORPUS)/.fetched $(COMPILED_TREE)/.built $(ASYNCAPI_PARSER)
	$(BIN)/python -m pytest -m "not integration" $(ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check services shared tests
	$(BIN)/ruff format --check services shared tests

typecheck: $(VENV)/.installed
	$(BIN)/mypy -p dohawatch

# Benchmarks, never tests: they print figures and write .bench/*.json. The fetcher's
# is measured beside the peer `reader` against nginx, both installed here.
BENCH_PEERS := 'reader>=3.12' 'sgmllib3k>=1.0'

bench: $(VENV)/.installed $(COMPILED_TREE)/.built
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nginx-light; }
	$(BIN)/python -m pip install --quiet $(BENCH_PEERS)
	PYTHONPATH=$(COMPILED_TREE) $(BIN)/python -m tests.bench.classifier
	$(BIN)/python -m tests.bench.fetcher
	$(BIN)/python -m tests.bench.feed_memory
	$(BIN)/python -m tests.bench.claims
	$(BIN)/python -m tests.bench.fetcher_replicas

schemas: $(VENV)/.installed
	$(BIN)/dohawatch schemas --write schemas/

# The Doha pack's learned model, trained on the dev corpus without its held-out
# stories, so that `make eval` still scores those on news neither part has seen.
model: $(VENV)/.installed
	$(BIN)/dohawatch train tests/data/dev-corpus.jsonl --holdout tests/data/dev-corpus.holdout \
	  --out services/classifier/packs/doha-talks.model.json

eval: $(VENV)/.installed
	$(BIN)/dohawatch eval $(or $(FILE),tests/data/dev-corpus.jsonl --holdout tests/data/dev-corpus.holdout) $(ARGS)

check: lint typecheck test

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .cache
	find services -name "*.so" -delete
	rm -f *__mypyc.*.so
