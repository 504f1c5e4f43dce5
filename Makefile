.PHONY: demo demo-stop test setup lint

# A local three-node cluster with the example stack deployed (left running).
demo: setup
	scripts/demo.sh

demo-stop:
	scripts/demo-stop.sh

# The whole test suite: layer contracts, strict types (settings in pyproject.toml), unit tests, end-to-end tests with real containers.
test: setup
	.venv/bin/lint-imports
	.venv/bin/mypy
	.venv/bin/pytest -q -p no:cacheprovider tests

# What demo and test share: Debian packages, dockerd, .venv (so .venv/bin/corral is the CLI), the demo image.
setup:
	scripts/setup.sh
