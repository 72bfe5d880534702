# Two commands: `make serve` installs (once) and starts the server; `make test` runs the tests.
VENV ?= .venv
STAMP := $(VENV)/.judge-server-installed

.PHONY: install serve test lint unit integration clean

$(STAMP): pyproject.toml clients/pyproject.toml scripts/install.sh
	./scripts/install.sh
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/judge-server serve $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check judge_server clients/judge_client tests clients/tests
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict clients/judge_client
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/python -m pytest -v --durations=10

unit: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not integration"

integration: $(STAMP)
	$(VENV)/bin/python -m pytest -m integration -v

clean:
	rm -rf $(VENV) build *.egg-info
