"""Evaluates a trained LM on held-out text and writes a results JSON.

    python analysis/evaluate_lm.py --model v5_brwac_transformer_fixed \
        --output analysis/artifacts/results/results_v5_fixed.json
"""

import argparse

from _common import DEFAULT_REGISTRY, main_wrapper, write_json


def run():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="registry key or a versions/.../<run>.keras path")
    parser.add_argument("--output", required=True, help="results JSON to write")
    parser.add_argument("--corpus", help="evaluate on the val split of this corpus instead of the run's own")
    parser.add_argument("--split", choices=["val", "all"], default="val")
    parser.add_argument("--max-tokens", type=int, help="score whole documents up to about this many tokens")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--registry", default=str(DEFAULT_REGISTRY))
    args = parser.parse_args()

    from kerasvq.evaluation import evaluate_run
    from kerasvq.registry import resolve_model

    key, path, _ = resolve_model(args.model, args.registry)
    results = evaluate_run(path, key, args.corpus, args.split, args.max_tokens, args.batch_size)
    m = results["metrics"]
    print(f"{key}: {results['data']['tokens']} tokens; loss {m['loss_nats']:.4f} nats, ppl {m['perplexity']:.2f}, "
          f"acc {m['token_accuracy']:.3f}, bits/byte {m['bits_per_byte']:.4f}, word ppl {m['word_perplexity']:.1f}")
    write_json(args.output, results)


if __name__ == "__main__":
    main_wrapper(run)
