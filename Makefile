# Two commands set everything up on a fresh machine (Python 3.11 and pip needed):
#   make run    install, generate the sample city, run extract → bulletin
#   make test   install with test tools, run the whole test suite
# Both create ./.venv with uv, which resolves this dependency set in seconds.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(shell command -v uv 2>/dev/null || echo $(BIN)/uv)

# uv checks TLS against SSL_CERT_FILE; point it at the system's bundle when unset.
ifeq ($(SSL_CERT_FILE),)
  ifneq ($(wildcard /etc/ssl/certs/ca-certificates.crt),)
    export SSL_CERT_FILE := /etc/ssl/certs/ca-certificates.crt
  endif
endif

.PHONY: run test install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	@command -v uv >/dev/null 2>&1 || $(BIN)/pip install --quiet uv

install: $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python -e .

install-test: $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python -e ".[test]"

run: install
	$(BIN)/govperf run

# Two stages: the default suite, then the long whole-pipeline runs on real data
# (ASEM, Baltimore 311, the property test). `make test` runs both.
test: install-test
	$(BIN)/python -m pytest -m "not slow"
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf var dbt_project/target dbt_project/logs dbt_project/target.lock sources/sample
