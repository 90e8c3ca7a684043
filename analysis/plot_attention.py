"""Draws a prompt's attention weights, one PNG per layer with a panel per head.

The same as `kerasvq attention` (arguments and outputs: kerasvq/commands/attention.py, `--help`):

    python analysis/plot_attention.py --model v5_brwac_transformer_fixed --output-dir analysis/artifacts/attention
    kerasvq attention --model v5_brwac_transformer_fixed --output-dir analysis/artifacts/attention
"""

from _common import run_verb

if __name__ == "__main__":
    run_verb("attention")
