# PixelMatch: `make run` starts the app on the demo catalog, `make test` runs the tests.
# Both create the virtualenv and install requirements.txt when needed.
PORT ?= 8501
PRESET ?= demo
SESSIONS ?= 8
DURATION ?= 60
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: run build test test-all test-browser bench load lint int8-probe venv clean-artifacts

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

venv: $(STAMP)

build: $(STAMP)
	$(PY) -m engine build --preset $(PRESET)

# The app starts at once. When the catalog is missing or stale, it is built beside the app (log:
# data/build-$(PRESET).log) and every page shows the build's progress until it is ready; Ctrl+C
# stops both (a stopped build carries on from its last finished step next time).
run: $(STAMP)
	@pid=""; \
	stop() { trap '' INT TERM; if [ -n "$$pid" ]; then \
	  echo "  Stopping the catalog build if it still runs (at its next unit of work)..."; \
	  kill -TERM $$pid 2>/dev/null; wait $$pid; pid=""; fi; }; \
	trap stop EXIT; trap 'stop; exit 130' INT TERM; \
	if ! $(PY) -c "import sys; from engine.pipeline import check; sys.exit(not check('$(PRESET)').ok)" 2>/dev/null; then \
	  log="$${PIXELMATCH_DATA:-data}/build-$(PRESET).log"; mkdir -p "$$(dirname "$$log")"; \
	  $(PY) -m engine build --preset $(PRESET) > "$$log" 2>&1 & pid=$$!; \
	  echo "  Building the $(PRESET) catalog beside the app (log: $$log)."; \
	fi; \
	echo ""; \
	echo "  PixelMatch is starting: open http://127.0.0.1:$(PORT) in your browser (Ctrl+C stops it)."; \
	echo ""; \
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT)

test: $(STAMP)
	$(PY) -m pytest

test-all: $(STAMP)
	$(PY) -m pytest --runslow

test-browser: $(STAMP)
	$(PY) -m pytest --runslow -m browser

# The load test runs first so that the report and the README quote the run just made.
bench: build
	$(MAKE) --no-print-directory load
	$(PY) -m engine bench --preset $(PRESET)

# Concurrent users: SESSIONS browser sessions for DURATION s (reports/load.json, benchmark.md).
load: build
	$(PY) -m e2e.load_test --catalog $(PRESET) --sessions $(SESSIONS) --duration $(DURATION)

# SBERT int8 vs fp32 on synthetic text, no build (reports/int8_probe.json; refuses when busy).
int8-probe: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m e2e.int8_probe

lint: $(STAMP)
	$(PY) -m ruff check .

clean-artifacts:
	rm -rf data/artifacts
