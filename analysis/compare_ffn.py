"""Dense vs top-2 MoE vs MoC at equal training tokens → JSON + markdown table.

Each variant trains in its own process (peak memory is per variant), then the table is
written from every `<out-dir>/<variant>.json` present, so variants may also be run one at a
time (`--only`) and tabulated at the end (`--table-only`).

    python analysis/compare_ffn.py --quick                      # CPU smoke run, tiny shapes
    KERAS_BACKEND=jax python analysis/compare_ffn.py            # GPU, the configs' shape
    KERAS_BACKEND=jax python analysis/compare_ffn.py --only moc-moc --set train.max_steps=200
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_CONFIGS = ["versions/moc-dense/config.json", "versions/moc-moe/config.json",
                   "versions/moc-moc/config.json"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.FIELD=VALUE", help="override every variant's config")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and 12 steps (CPU)")
    parser.add_argument("--only", action="append", default=[], help="variant name(s) to run")
    parser.add_argument("--table-only", action="store_true", help="only gather existing results")
    parser.add_argument("--run-name", default=None, help="default: compare (or quick)")
    parser.add_argument("--out-dir", default=None,
                        help="default: analysis/artifacts/compare_ffn[_quick]")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def load(config_path, args):
    from kerasvq.config.base import apply_overrides, from_dict, load_json
    from kerasvq.config.lm import LMConfig
    from kerasvq.evaluation.ffn_comparison import QUICK_OVERRIDES

    raw = load_json(config_path)
    overrides = list(args.overrides)
    if args.quick:
        overrides = QUICK_OVERRIDES + [f"name={raw['name']}-quick",
                                       "data.tokenizer_version=moc-dense-quick"] + overrides
    return from_dict(LMConfig, apply_overrides(raw, overrides), str(config_path))


def main(argv=None):
    args = parse_args(argv)
    from kerasvq.common.errors import UserError

    run_name = args.run_name or ("quick" if args.quick else "compare")
    out_dir = Path(args.out_dir or f"analysis/artifacts/compare_ffn{'_quick' if args.quick else ''}")
    try:
        if args.one:
            from kerasvq.evaluation.ffn_comparison import run_variant

            run_variant(load(args.one, args), run_name, out_dir)
            return 0
        from kerasvq.evaluation.ffn_comparison import write_table

        if not args.table_only:
            for config_path in args.configs:
                cfg = load(config_path, args)  # validates every config before training any
                if args.only and cfg.name not in args.only and cfg.name.removesuffix("-quick") not in args.only:
                    continue
                print(f"=== {cfg.name} ({cfg.model.ffn}) ===", flush=True)
                command = [sys.executable, __file__, "--one", config_path, "--run-name", run_name,
                           "--out-dir", str(out_dir)] + (["--quick"] if args.quick else [])
                for item in args.overrides:
                    command += ["--set", item]
                subprocess.run(command, check=True, env=os.environ.copy())
        summary, table = write_table(out_dir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"error: a variant failed (exit {e.returncode}); see its output above", file=sys.stderr)
        return 1
    print(table.read_text(encoding="utf-8"))
    print(f"wrote {summary} and {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
