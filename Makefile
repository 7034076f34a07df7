# The two quick-start commands: `make demo` and `make test`. Both set up .venv themselves.
.PHONY: setup demo test bench clean
VENV := .venv/bin

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/jewelgan demo --out demo_out

test: setup
	$(VENV)/python -m pytest

# throughput figures (minutes); the 2 x 30-minute quality comparison is `benchmarks/time_to_quality.py`
bench: setup
	for b in prepare_throughput render_throughput train_throughput feature_throughput; do \
	  $(VENV)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf .venv demo_out
