"""What each design piece of the residual VQ-VAE is worth: train one variant, score it held out.

Every variant is `versions/vqvae-wiki/config.json` plus `section.field=value` overrides; the
run trains with the production runner (`train_vqvae`, same split, same seed) into
`/tmp/kerasvq-pieces/<tag>/` and appends one line to `--results` (JSON lines): held-out cosine,
recall@10, min usage, max share and training seconds, with the same metrics as
`kerasvq vqvae evaluate` (`kerasvq.metrics.vq_evaluation`), without the FAISS baselines.

    python analysis/vq_design_pieces.py --tag rq-init model.residual=true train.codebook_init=faiss_rq

`--encode-beam B --from-tag T` scores variant T's trained model again with a beam search of
width B at encode time only (the piece "beam search at encode time" without retraining).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", required=True, help="the variant's name (its output folder)")
    parser.add_argument("--config", default="versions/vqvae-wiki/config.json")
    parser.add_argument("--results", default="/tmp/kerasvq-pieces/results.jsonl")
    parser.add_argument("--from-tag", help="score this variant's trained model instead of training")
    parser.add_argument("--encode-beam", type=int, help="with --from-tag: the encode-time beam width")
    parser.add_argument("overrides", nargs="*", help="section.field=value")
    args = parser.parse_args(argv)

    from kerasvq.config.vqvae import load_vqvae_config
    from kerasvq.data.embeddings import EmbeddingFile, split_indices
    from kerasvq.metrics.vq_evaluation import evaluate_quantizers
    from kerasvq.training.vqvae_run import train_vqvae

    cfg = load_vqvae_config(args.config, args.overrides)
    if args.from_tag:
        import keras

        import kerasvq.models  # noqa: F401  (registers the classes)

        folder = Path(args.results).parent / args.from_tag
        model = keras.saving.load_model(folder / "models" / "vqvae.keras")
        if args.encode_beam:
            model.quantizer.beam_size = args.encode_beam
        summary = json.loads((folder / "results" / "train_summary.json").read_text())
    else:
        model, summary = train_vqvae(cfg, Path(args.results).parent / args.tag, verbose=0, overwrite=True)
    source = EmbeddingFile(os.path.expanduser(cfg.data.embeddings), model.input_dim, cfg.data.dataset)
    train_idx, test_idx = split_indices(len(source), cfg.data.test_fraction, cfg.data.split_seed)
    x_train, x_test = source.take(train_idx), source.take(test_idx)
    start = time.time()
    model.encode(x_test)
    encode_seconds = time.time() - start
    scores = evaluate_quantizers(model, x_train, x_test, baselines=False)["kerasvq"]
    row = {"tag": args.tag, "overrides": args.overrides, "cosine": scores["cosine"],
           "recall_at_10": scores["recall_at_10"], "min_usage": scores["min_usage"],
           "max_share": scores["max_share"], "training_seconds": summary["training_seconds"],
           "encode_vectors_per_second": len(x_test) / encode_seconds}
    print(json.dumps(row))
    with open(args.results, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
