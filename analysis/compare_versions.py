"""Evaluates and samples several models on the same text and prompts; writes a comparison
JSON and a markdown table (plus each model's results and samples JSON).

The same as `kerasvq compare` (arguments and outputs: kerasvq/commands/compare.py, `--help`):

    python analysis/compare_versions.py --model-keys v4_lstm v5_brwac_transformer_fixed --output-dir analysis/artifacts/compare
    kerasvq compare --models v4_lstm v5_brwac_transformer_fixed --output-dir analysis/artifacts/compare
"""

from _common import run_verb

if __name__ == "__main__":
    run_verb("compare")
