"""Evaluates a trained LM on held-out text and writes a results JSON.

The same as `kerasvq evaluate` (arguments and outputs: kerasvq/commands/evaluate.py, `--help`):

    python analysis/evaluate_lm.py --model v5_brwac_transformer_fixed --output analysis/artifacts/results/results_v5_fixed.json
    kerasvq evaluate --model v5_brwac_transformer_fixed --output analysis/artifacts/results/results_v5_fixed.json
"""

from _common import run_verb

if __name__ == "__main__":
    run_verb("evaluate")
