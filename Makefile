# The two quick-start commands: `make demo` and `make test`. Both set up .venv themselves.
.PHONY: setup demo test bench clean
VENV := .venv/bin

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/jewelgan demo --out demo_out

test: setup
	$(VENV)/python -m pytest

bench: setup
	for b in benchmarks/*.py; do $(VENV)/python $$b || exit 1; done

clean:
	rm -rf .venv demo_out
