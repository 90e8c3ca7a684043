"""Builds the TCC report (markdown + PNG figures) from a comparison JSON.

The same as `kerasvq report` (arguments and outputs: kerasvq/commands/report.py, `--help`):

    python analysis/report.py --comparison analysis/artifacts/compare/comparison.json --output-dir analysis/artifacts/report
    kerasvq report --comparison analysis/artifacts/compare/comparison.json --output-dir analysis/artifacts/report \\
        --attention-model v5_brwac_transformer_fixed
"""

from _common import run_verb

if __name__ == "__main__":
    run_verb("report")
