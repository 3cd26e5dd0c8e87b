# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# llama-cpp-python compiles llama.cpp from source (about 7 minutes on 2 cores, once:
# pip keeps the built wheel in its cache). The build is portable (AVX2, no -march=native):
# a native build on a CPU that reports AMX crashes in llama_decode inside VMs that do not
# enable AMX, and a wheel built natively on one machine may not run on the next.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
	-DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: setup setup-dev lock browser demo lint test bench clean

# `setup` installs what poise needs to run (the demo); `setup-dev` adds the test, lint and type
# tools and the optional extras the tests cover (whitebox: torch 2.13.0 CPU, transformers; ray).
setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

# constraints.txt pins every package to the versions CI tested: no drift on a fresh machine.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

# After a deliberate upgrade in .venv: write its exact versions to constraints.txt.
lock: setup-dev
	{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

# Headless Chromium for the report's browser test (tests/test_report.py skips it without one):
# installed with apt-get when it is missing and we are root; never fails the build.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the browser test ..."; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
	    echo "note: could not install chromium; the browser test will be skipped"; \
	  else echo "note: no chromium; the browser test will be skipped (apt-get install chromium)"; fi; }

demo: setup
	$(BIN)/poise demo

# Lint and type checks (configured in pyproject.toml) run before the tests: a new error fails CI.
lint: setup-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: setup-dev browser lint
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_ranking.py

clean:
	rm -rf $(VENV) poise-runs .pytest_cache
