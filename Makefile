# Two commands do all the set-up on a fresh machine: `make lab` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

# Debian's chromium for the browser tests (Playwright drives it; no browser download).
CHROMIUM ?= /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian's PostgreSQL server for the ledger tests (the suite starts a throwaway server of its own, tests/pg.py);
# tools/pg_bin.sh finds its bin directory, whatever the major version; the path below only names a missing one.
PG_CTL ?= $(or $(shell tools/pg_bin.sh),/usr/lib/postgresql/missing/bin)/pg_ctl

# Five watchers on one 500-job batch, polling 5 to 30 simulated minutes apart (at watch's defaults the single
# watcher's run alone takes over 20 minutes here; the ratio is what is measured).
WATCHERS_ARGS ?= --interval 300 --max-interval 1800 --max-rate 1000

.PHONY: lab test install sim clean bench screenshots soak

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# No "main" cluster is created, so the distribution's service has nothing to start.
$(PG_CTL):
	$(SUDO) mkdir -p /etc/postgresql-common/createcluster.d
	echo 'create_main_cluster = false' | $(SUDO) tee /etc/postgresql-common/createcluster.d/ims-nb.conf >/dev/null
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql
	tools/pg_bin.sh >/dev/null

test: install $(CHROMIUM) $(PG_CTL)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lab: install
	$(BIN)/ims-nb lab

sim: install
	$(BIN)/ims-nb sim --port 0

bench: install $(CHROMIUM)
	$(BIN)/python -m benchmarks.bench_listing
	$(BIN)/python -m benchmarks.bench_preflight
	$(BIN)/python -m benchmarks.bench_watch
	$(BIN)/python -m benchmarks.bench_import
	$(BIN)/python -m benchmarks.bench_estate
	$(BIN)/python -m benchmarks.bench_coverage
	$(BIN)/python -m benchmarks.bench_watchers $(WATCHERS_ARGS)
	mkdir -p benchmarks/results
	IMS_NB_BENCH_PICKER_OUT=benchmarks/results/picker_ui.json $(BIN)/python -m pytest -q -s -p no:cacheprovider \
		tests/browser/test_picker_load.py

# The long runs behind the README's Reliability figures (`make test` runs reduced versions).
soak: install $(PG_CTL)
	$(BIN)/python -m benchmarks.drills.soak
	$(BIN)/python -m benchmarks.drills.fault_matrix
	$(BIN)/python -m benchmarks.drills.team
	$(BIN)/python -m benchmarks.bench_watchers $(WATCHERS_ARGS)

# The README's pictures, taken by the browser tests (test-artifacts/ holds every test's last page).
screenshots: install $(CHROMIUM)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/browser
	mkdir -p docs/screenshots
	cp test-artifacts/test_pick_three_launch_and_watch_two_exports_in_the_app.png docs/screenshots/app-export.png
	cp test-artifacts/lab-02_export-after-the-batch.png docs/screenshots/lab-02-export.png
	cp test-artifacts/lab-01_inventory.png docs/screenshots/lab-01-inventory.png
	cp test-artifacts/lab-03_job_durations.png docs/screenshots/lab-03-job-durations.png
	cp test-artifacts/lab-04_coverage.png docs/screenshots/lab-04-coverage.png

clean:
	rm -rf $(VENV) .pytest_cache
