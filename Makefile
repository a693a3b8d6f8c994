.PHONY: setup test test-pure test-compiled bench lint demo
setup:
	bash ci/setup.sh
test:
	bash ci/test.sh
test-compiled:
	.venv/bin/python -m pytest -q tests
test-pure:
	UFTPCORE_NO_EXTENSIONS=1 .venv/bin/python -m pytest -q tests
bench:
	.venv/bin/python benchmarks/run.py
lint:
	.venv/bin/python -m ruff check uftpcore pyunicore_fast tests benchmarks
demo:
	.venv/bin/pyunicore-fast demo
