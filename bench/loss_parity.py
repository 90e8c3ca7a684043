"""Loss parity of the fast (mixed bfloat16) path against float32 after the same steps.

Trains the config's model for `--steps` steps under each policy on the same real batches
(see kerasvq.training.precision_check) and prints the validation cross-entropy of each run
next to a second float32 seed, which shows the run-to-run noise.

    KERAS_BACKEND=jax python bench/loss_parity.py --steps 200 --set train.batch_size=256   # GPU
    python bench/loss_parity.py --steps 30 --set train.batch_size=8                        # CPU
"""

import argparse

import keras

from kerasvq.config.lm import load_lm_config
from kerasvq.data.lm_data import load_lm_data
from kerasvq.training.run_paths import RunPaths
from kerasvq.training.precision_check import compare_policies
from kerasvq.training.xla_flags import use_training_xla_flags


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="versions/v5-transformer/config.json")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--policies", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--noise-seed", type=int, default=7, help="seed of the extra float32 run")
    args = parser.parse_args()
    use_training_xla_flags()  # as `kerasvq train` does, before JAX starts

    cfg = load_lm_config(args.config, args.overrides)
    mappings = RunPaths(cfg.data.tokenizer_version or cfg.name, "bench").mappings
    data = load_lm_data(cfg, mappings, log=lambda m: None)
    rows = compare_policies(cfg, data.train_stream, data.val_stream, args.steps,
                            tuple(args.policies), args.noise_seed)
    print(f"backend={keras.backend.backend()} steps={args.steps} batch={cfg.train.batch_size} "
          f"seq_len={cfg.data.seq_len} dropout={cfg.model.dropout}")
    print(f"{'policy':<16} {'seed':>5} {'compute':>9} {'train loss':>11} {'val CE':>8} {'delta':>8}")
    for r in rows:
        print(f"{r['policy']:<16} {r['seed']:>5} {r['compute_dtype']:>9} {r['train_loss']:>11.4f} "
              f"{r['val_cross_entropy']:>8.4f} {r['delta']:>+8.4f}")


if __name__ == "__main__":
    main()
