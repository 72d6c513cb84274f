# The two commands of the README: `make run` and `make test`. Both install what is
# missing first (scripts/bootstrap.sh) and regenerate the protobuf code.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export VENV

.PHONY: run run-ha test soak bench ha-measure mutants install install-test gen lint clean

run: install gen
	scripts/run.sh

# The same stack on a replica set of 3 Tarantool nodes that fails over by itself (etcd).
run-ha: install gen
	scripts/run-ha.sh

test: install-test gen
	$(PY) -m pytest $(PYTEST_ARGS)

# On demand, not in `make test`: 50 clients for 60 s, a 10-minute soak, a crash test.
soak: install-test gen
	$(PY) -m tests.reliability.soak $(SOAK_ARGS)

# On demand: the master crash of tests/ha repeated on fresh HA stacks, for the median.
ha-measure: install-test gen
	$(PY) -m tests.ha.measure $(HA_MEASURE_ARGS)

# On demand: every path to the data against the raw Tarantool limit; writes docs/benchmarks/.
bench: install-test gen
	$(PY) -m bench.run $(BENCH_ARGS)

# On demand: breaks one guarantee at a time (scripts/mutants.py) and requires its tests to fail.
mutants: install-test gen
	$(PY) scripts/mutants.py $(MUTANTS_ARGS)

install:
	scripts/bootstrap.sh run

install-test:
	scripts/bootstrap.sh test

gen:
	$(PY) scripts/gen_protos.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Removes generated code and the virtualenv; never the data in var/.
clean:
	find tkv -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
	rm -rf envoy/tkv.pb $(VENV)
