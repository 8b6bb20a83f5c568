# Set-up and everyday commands. `make demo` and `make test` install what they need themselves.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install demo test test-fast lint benchmark clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# The CPU build of torch 2.13.0 is on disk; installing it first keeps the embeddings extra from
	# pulling a CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[embeddings,dev]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: install
	$(VENV)/bin/llm-release demo

# pytest exits 5 when it collected no tests: that is a failure of ours, not a pass.
test: install
	@$(VENV)/bin/pytest -p no:cacheprovider tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-fast: install
	$(VENV)/bin/pytest -p no:cacheprovider -m "not e2e and not integration" tests

lint: install
	$(VENV)/bin/ruff check provider dags plugins tests benchmarks

benchmark: install
	$(PY) benchmarks/parse_time.py

clean:
	rm -rf $(VENV) .demo
