"""A run directory and what it holds: run.json (provenance), checkpoints, metrics.jsonl, samples. Training
writes it; export, warm start, generation and the report read it through RunDir (rundir.py), which alone
knows where each file lives."""
