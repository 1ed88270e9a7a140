# Every target sets itself up from nothing: a fresh clone needs only python3, node/npm and (for
# the browser tests) root to apt-get Debian's chromium.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
COLAB := .venv-colab
CHROMIUM ?= /usr/bin/chromium
PYTEST_ARGS ?=

.PHONY: setup test test-js test-py demo demo-terminal bench lint chromium clean

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

batch_widget/static/widget.js: node_modules/.package-lock.json $(wildcard js/*.ts js/*.css)
	npm run --silent build

# What Colab runs: ipykernel 6.x and pandas 2.2. The kernel tests start a kernel from this
# environment as well as from .venv (ipykernel 7), and the frames tests run on both pandas.
$(COLAB)/.installed: pyproject.toml
	test -x $(COLAB)/bin/python || $(PYTHON) -m venv $(COLAB)
	$(COLAB)/bin/python -m pip install --quiet 'ipykernel>=6.29,<7' 'pandas>=2.2,<2.3' \
	  pytest pytest-asyncio pytest-timeout orjson pyarrow -e .
	touch $@

setup: $(STAMP) node_modules/.package-lock.json batch_widget/static/widget.js $(COLAB)/.installed

chromium:
	@test -x $(CHROMIUM) || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test-js: node_modules/.package-lock.json
	npm test --silent

test-py: setup chromium
	$(PY) -m pytest $(PYTEST_ARGS)
	$(COLAB)/bin/python -m pytest tests/test_frames.py -p no:cacheprovider $(PYTEST_ARGS)

test: setup chromium test-js test-py

# The quickstart notebook in JupyterLab (simulator unless TWELVELABS_API_KEY is set). Jupyter
# prints the URL to open; with no display it does not try to open a browser.
DEMO_IP ?= 127.0.0.1
demo: setup
	$(VENV)/bin/jupyter lab notebooks/quickstart.ipynb --ServerApp.ip=$(DEMO_IP) \
	  $(if $(DISPLAY),,--no-browser) $(if $(filter 0,$(shell id -u)),--allow-root,)

demo-terminal: setup
	$(PY) scripts/terminal_demo.py

bench: setup
	$(PY) benchmarks/run_all.py

lint: setup
	$(VENV)/bin/ruff check batch_widget tests benchmarks scripts
	$(VENV)/bin/mypy
	npx tsc --noEmit

clean:
	rm -rf $(VENV) $(COLAB) node_modules batch_widget/static test-artifacts
