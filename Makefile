# The two commands of the README: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser demo test stress lint bench clean

# (Re)install only when the venv is missing or pyproject.toml changed: quick when up to date.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the report's browser test (Debian's package, where apt is usable; else the test skips).
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
		&& (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium not installed (needs apt-get as root): the browser test of the report will skip"; }

# The demo benchmark (benchmarks/configs/demo.yaml) end to end, then its report: demo_out/report/index.html.
demo: $(STAMP)
	$(VENV)/bin/fakebench demo -o demo_out

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) tools/import_graph.py --lint  # import-linter layer contracts (pyproject.toml) and no import cycles

test: lint browser
	$(PY) -m pytest -n 2 -q

# The suite three times under settings that expose values depending on the CPU or on leftover heap contents:
# glibc filling freed memory with a different byte each run, and oneDNN limited to AVX2 kernels.
stress: lint browser
	for perturb in 85 170 42; do \
		MALLOC_PERTURB_=$$perturb ONEDNN_MAX_CPU_ISA=AVX2 $(PY) -m pytest -n 2 -q -p no:cacheprovider || exit 1; \
	done

bench: $(STAMP)
	$(PY) benchmarks/analyze.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache *.egg-info
