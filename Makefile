# Two commands on a fresh Debian 12 (python3, python3-venv, make, git):
#   make run    installs what is missing, generates the demo export, runs the pipeline -> out/
#   make test   installs what is missing and runs the test suite (all of it)
#   make quick  the quick loop: lint, types, and the tests not marked slow
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out
DEMO_PATIENTS ?= 400
DEMO_SEED ?= 7

# WeasyPrint: pango + harfbuzz-subset (without it fonts are subset ~6x slower); a font;
# the tests read PDFs back with poppler (pdftotext, pdftoppm) and qpdf.
DEBIAN_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
                   poppler-utils qpdf

.PHONY: run test quick lint bench bench-1m sysdeps clean

run: sysdeps $(STAMP)
	$(BIN)/outcomes demo $(OUT)/demo-export --patients $(DEMO_PATIENTS) --seed $(DEMO_SEED)
	$(BIN)/outcomes run $(OUT)/demo-export --out $(OUT)

# -n auto: one pytest worker per core (pytest-xdist); a module runs on one worker, so its
# fixtures are built once; tests/conftest.py starts the longest modules first.
PYTEST_PARALLEL := -n auto --dist loadfile --no-loadscope-reorder
# Bytecode is cached even where the environment turns it off (PYTHONDONTWRITEBYTECODE=1): the
# suite starts hundreds of Python processes (the CLI, payer render workers), each of which would
# compile the package again, and each pytest worker would rewrite the asserts of all test modules
# (~4 s) on every run. __pycache__/ is ignored by git.
PYTEST := env PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest
# The tests' temporary files go to /dev/shm when it has room (scripts/run-tests.sh says why).
RUN_TESTS := sh scripts/run-tests.sh

test: sysdeps $(STAMP)
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/mypy pipeline
	$(RUN_TESTS) $(PYTEST) $(PYTEST_PARALLEL)

quick: $(STAMP)
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/mypy pipeline
	$(RUN_TESTS) $(PYTEST) $(PYTEST_PARALLEL) -m "not slow"

# Not part of `make test` / CI: minutes, and gigabytes of generated exports under bench-out/.
# Both write BENCHMARKS.md (each only its own marked part). bench: ~10 min (12 snapshots of 100k
# patients, then 10k and 100k). bench-1m: every scale target from one run, ~20 min and ~10 GB
# of disk (10k, 100k and 1M patients with bench/large.toml, the 1M snapshot reload, payer x3).
bench: sysdeps $(STAMP)
	$(BIN)/python bench/snapshot_bench.py --patients 100000 --months 12
	$(BIN)/python bench/run_bench.py --sizes 10000,100000

bench-1m: sysdeps $(STAMP)
	$(BIN)/python bench/run_bench.py --sizes 10000,100000 --large 1000000 --config bench/large.toml

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests
	$(BIN)/mypy pipeline

sysdeps:
	@sh scripts/ensure-debian-packages.sh $(DEBIAN_PACKAGES)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip==26.3"
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(OUT)
