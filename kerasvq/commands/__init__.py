"""CLI verbs, one module each; `kerasvq.cli` discovers them. See `kerasvq/cli.py`."""
