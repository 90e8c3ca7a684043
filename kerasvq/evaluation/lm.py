"""Evaluates a trained language model on held-out text: the numbers of a results JSON.

The text is the validation split of the run's own corpus (same `max_docs`, `val_fraction`
and `split_seed` as training, so it is exactly the held-out documents), or the validation
split of another corpus given with `corpus=`. Documents are tokenised with the run's
tokenizer and joined as in training (each followed by end-of-sequence); the stream starts
with an end-of-sequence token too, so every token of every document, and each document's end,
is predicted exactly once, in non-overlapping windows of `seq_len`.

- loss / perplexity / accuracy: per token, unsmoothed (label smoothing never enters).
- bits per byte: summed nats / ln 2 / UTF-8 bytes, where bytes = the documents' bytes plus
  one per document for the end-of-sequence (the newline that separates documents).
- word perplexity: exp(summed nats / whitespace-separated words).

Example:
    >>> results = evaluate_run("versions/v5-transformer/models/main.keras", model_key="v5")
    >>> results["metrics"]["bits_per_byte"]
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import numpy as np
from keras import ops

from kerasvq.config.base import from_dict, load_json
from kerasvq.config.lm import LMConfig
from kerasvq.data.corpus import read_documents, resolve_corpus, split_documents
from kerasvq.common.errors import UserError
from kerasvq.generation.generate import compiled_steps
from kerasvq.metrics.lm import lm_metrics
from kerasvq.training.losses import token_cross_entropy

RESULTS_SCHEMA_VERSION = 1


def config_sha256(config: dict) -> str:
    """Hash of a config dict in canonical JSON (sorted keys), stable across runs."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def run_record(kind: str, schema_version: int, model_path: Path, model_key: str | None,
               cfg: LMConfig, resolved: dict) -> dict:
    """The fields every results and samples JSON opens with: what the record is and which run
    (config and tokenizer hashes, which `compare` checks) it describes."""
    return {
        "schema_version": schema_version,
        "kind": kind,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model_key": model_key,
        "model_path": str(model_path),
        "version": cfg.name,
        "run": model_path.name.removesuffix(".keras"),
        "architecture": cfg.model.architecture,
        "config_sha256": config_sha256(resolved["config"]),
        "tokenizer_sha256": resolved["tokenizer"]["sha256"],
    }


def heldout_documents(cfg: LMConfig, corpus: str | None = None, split: str = "val") -> tuple[Path, list[str]]:
    """The validation (or, with split="all", every) document of `corpus` or the run's corpus."""
    path = resolve_corpus(corpus or cfg.data.corpus)
    docs = read_documents(path, max_docs=cfg.data.max_docs).documents
    if split == "all":
        return path, docs
    if split != "val":
        raise UserError(f"split must be 'val' or 'all', got {split!r}")
    return path, split_documents(docs, cfg.data.val_fraction, cfg.data.split_seed)[1]


def score_documents(model, tokenizer, documents: list[str], batch_size: int = 16, max_tokens: int | None = None) -> dict:
    """Summed nats, token count, correct predictions, bytes and words over `documents`.

    With `max_tokens`, whole documents are taken in order until that many tokens, so bytes
    and words still describe exactly the text that was scored.
    """
    encoded = tokenizer.encode(documents)
    eos = tokenizer.eos_id
    stream, used = [eos], 0
    for ids in encoded:
        if max_tokens is not None and used and len(stream) - 1 >= max_tokens:
            break
        stream.extend(ids)
        stream.append(eos)
        used += 1
    docs = documents[:used]
    seq_len = int(model.seq_len)
    stream = np.asarray(stream, dtype="int32")
    targets_total = len(stream) - 1
    num_windows = -(-targets_total // seq_len)
    x = np.zeros((num_windows, seq_len), "int32")
    y = np.zeros((num_windows, seq_len), "int32")
    mask = np.zeros((num_windows, seq_len), bool)
    for w in range(num_windows):
        chunk = stream[w * seq_len : w * seq_len + seq_len + 1]
        n = len(chunk) - 1
        x[w, :n] = chunk[:-1]
        y[w, :n] = chunk[1:]
        mask[w, :n] = True
    forward = compiled_steps(model)[1]
    total_nats, correct = 0.0, 0
    for start in range(0, num_windows, batch_size):
        sl = slice(start, start + batch_size)
        logits = forward(ops.convert_to_tensor(x[sl]))
        nll = ops.convert_to_numpy(token_cross_entropy(ops.convert_to_tensor(y[sl]), logits))
        pred = ops.convert_to_numpy(ops.argmax(logits, axis=-1))
        m = mask[sl]
        total_nats += float(nll[m].astype("float64").sum())
        correct += int((pred == y[sl])[m].sum())
    return {
        "total_nats": total_nats,
        "tokens": int(mask.sum()),
        "correct": correct,
        "bytes": sum(len(d.encode("utf-8")) + 1 for d in docs),
        "words": sum(len(d.split()) for d in docs),
        "documents": used,
    }


def training_summary(history_path: Path) -> dict | None:
    """Best epoch, its train/val cross-entropy and gap, and the per-epoch curve, from the
    training history JSON; None when the run left no history."""
    if not history_path.is_file():
        return None
    history = load_json(history_path)
    epochs = history.get("epochs", [])
    curve = [
        {k: e.get(k) for k in ("epoch", "loss", "val_loss", "cross_entropy", "val_cross_entropy",
                                "perplexity", "val_perplexity", "val_bits_per_byte", "gap", "learning_rate")}
        for e in epochs
    ]
    best = min(epochs, key=lambda e: e["val_loss"]) if epochs else None
    return {
        "history_path": str(history_path),
        "status": history.get("status"),
        "best_epoch": best and best["epoch"],
        "train_cross_entropy": best and best.get("cross_entropy"),
        "val_cross_entropy": best and best.get("val_cross_entropy"),
        "gap": best and best.get("gap"),
        "wall_seconds": history.get("wall_seconds"),
        "epochs": curve,
    }


def evaluate_run(model_path: str | Path, model_key: str | None = None, corpus: str | None = None,
                 split: str = "val", max_tokens: int | None = None, batch_size: int = 16,
                 loaded=None) -> dict:
    """The results JSON (schema in `analysis/README.md`) of the model saved at `model_path`.

    `loaded` = (model, resolved, tokenizer) from `load_trained_model` avoids loading twice.
    """
    from kerasvq.evaluation.trained_model import load_trained_model

    model_path = Path(model_path)
    model, resolved, tokenizer = loaded or load_trained_model(model_path)
    cfg = from_dict(LMConfig, resolved["config"], str(model_path))
    corpus_path, docs = heldout_documents(cfg, corpus, split)
    if not docs:
        raise UserError(f"{corpus_path}: no held-out documents to evaluate")
    scored = score_documents(model, tokenizer, docs, batch_size, max_tokens)
    record = run_record("kerasvq.lm_results", RESULTS_SCHEMA_VERSION, model_path, model_key, cfg, resolved)
    return {
        **record,
        "parameters": int(model.count_params()),
        "tokenizer": {**resolved["tokenizer"], "vocab_size": tokenizer.vocab_size},
        "config": resolved["config"],
        "data": {
            "corpus": str(corpus_path),
            "split": split,
            "documents": scored["documents"],
            "words": scored["words"],
            "bytes": scored["bytes"],
            "tokens": scored["tokens"],
            "max_tokens": max_tokens,
        },
        "metrics": lm_metrics(scored["total_nats"], scored["tokens"], scored["correct"],
                              scored["bytes"], scored["words"]),
        "training": training_summary(model_path.parent.parent / "logs" / f"train_{record['run']}.json"),
    }
