"""Continues fixed pt-BR prompts with a trained LM and writes a samples JSON with metrics.

The same as `kerasvq sample` (arguments and outputs: kerasvq/commands/sample.py, `--help`):

    python analysis/generate_samples.py --model-key v5_brwac_transformer_fixed --output analysis/artifacts/samples/samples_v5_fixed.json
    kerasvq sample --model v5_brwac_transformer_fixed --output analysis/artifacts/samples/samples_v5_fixed.json
"""

from _common import run_verb

if __name__ == "__main__":
    run_verb("sample")
