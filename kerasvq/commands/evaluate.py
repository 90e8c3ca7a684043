"""`kerasvq evaluate`: a trained language model on held-out text → results JSON.

The schema is in `analysis/README.md`; `analysis/evaluate_lm.py` is this verb under its old
name. The VQ models have their own: `kerasvq vqvae evaluate`, `kerasvq hvqvae evaluate`.

Example:
    $ kerasvq evaluate --model v5_brwac_transformer_fixed \
        --output analysis/artifacts/results/results_v5_fixed.json
"""

from __future__ import annotations

from kerasvq.commands._common import add_registry_option, write_json


def register(subparsers):
    parser = subparsers.add_parser("evaluate", help="a language model on held-out text → results JSON",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="registry key or a versions/.../<run>.keras path")
    parser.add_argument("--output", required=True, help="results JSON to write")
    parser.add_argument("--corpus", help="evaluate on the val split of this corpus instead of the run's own")
    parser.add_argument("--split", choices=["val", "all"], default="val")
    parser.add_argument("--max-tokens", type=int, help="score whole documents up to about this many tokens")
    parser.add_argument("--batch-size", type=int, default=16)
    add_registry_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from kerasvq.evaluation.lm import evaluate_run
    from kerasvq.evaluation.registry import resolve_model

    key, path, _ = resolve_model(args.model, args.registry)
    results = evaluate_run(path, key, args.corpus, args.split, args.max_tokens, args.batch_size)
    m = results["metrics"]
    print(f"{key}: {results['data']['tokens']} tokens; loss {m['loss_nats']:.4f} nats, ppl {m['perplexity']:.2f}, "
          f"acc {m['token_accuracy']:.3f}, bits/byte {m['bits_per_byte']:.4f}, word ppl {m['word_perplexity']:.1f}")
    write_json(args.output, results)
    return 0
