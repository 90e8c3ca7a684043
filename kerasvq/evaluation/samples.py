"""Samples from fixed prompts, each scored for degeneration next to held-out human text.

Every prompt is continued under every sampling setting; each sample records its prompt,
settings, text, metrics (`kerasvq.metrics.text`) and a verdict against a human baseline built
from the validation split of the model's corpus, cut to the samples' typical length (the
largest per-setting median word count, at least 10 words).

Example:
    >>> record = sample_run("versions/v5-transformer/models/main.keras", read_prompts("analysis/prompts_ptbr.txt"))
    >>> record["summary"]["sampled"]["verdict"]["label"]
    'ok'
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kerasvq.config.base import from_dict
from kerasvq.config.lm import LMConfig
from kerasvq.common.errors import UserError
from kerasvq.evaluation.lm import heldout_documents, run_record
from kerasvq.generation.generate import generate_text
from kerasvq.metrics.lexicon import load_lexicon
from kerasvq.metrics.text import aggregate_metrics, human_baseline, text_metrics, verdict
from kerasvq.generation.sampling import SamplingConfig

SAMPLES_SCHEMA_VERSION = 1
MIN_WORDS_PER_CHUNK = 10

# Greedy shows what the model believes most; "sampled" is the setting a reader would use.
DEFAULT_SETTINGS = {
    "greedy": SamplingConfig(greedy=True, max_new_tokens=60),
    "sampled": SamplingConfig(temperature=0.8, top_k=50, top_p=0.95, repetition_penalty=1.1,
                              max_new_tokens=60, seed=1337),
}


def read_prompts(path: str | Path) -> list[str]:
    """One prompt per non-empty line (lines starting with '#' are comments)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: prompts file not found; expected one prompt per line")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line_no = raw[:e.start].count(b"\n") + 1
        raise UserError(f"{path}:{line_no}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the "
                        "prompts file as UTF-8, one prompt per line") from None
    prompts = [line.strip() for line in text.splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise UserError(f"{path}: no prompts; expected one prompt per line")
    return prompts


def settings_with(max_new_tokens: int | None = None, seed: int | None = None) -> dict:
    """`DEFAULT_SETTINGS` with a different length or seed."""
    out = {}
    for name, cfg in DEFAULT_SETTINGS.items():
        changes = {k: v for k, v in (("max_new_tokens", max_new_tokens), ("seed", seed)) if v is not None}
        out[name] = dataclasses.replace(cfg, **changes).validate()
    return out


def sample_run(model_path: str | Path, prompts: list[str], settings: dict | None = None,
               model_key: str | None = None, corpus: str | None = None, batch_size: int = 8,
               max_human_chunks: int = 200, loaded=None) -> dict:
    """The samples JSON (schema in `analysis/README.md`) for the model saved at `model_path`."""
    from kerasvq.evaluation.trained_model import load_trained_model

    model_path = Path(model_path)
    settings = settings or DEFAULT_SETTINGS
    model, resolved, tokenizer = loaded or load_trained_model(model_path)
    cfg = from_dict(LMConfig, resolved["config"], str(model_path))
    lexicon = load_lexicon()

    samples = []
    for name, sampling in settings.items():
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            for out in generate_text(model, tokenizer, batch, sampling):
                metrics = text_metrics(out["text"], lexicon)
                samples.append({
                    "prompt": out["prompt"],
                    "setting": name,
                    "text": out["text"],
                    "num_new_tokens": len(out["token_ids"]),
                    "stopped_at_eos": out["stopped_at_eos"],
                    "prompt_truncated": out["prompt_truncated"],
                    "metrics": metrics,
                })

    corpus_path, human_docs = heldout_documents(cfg, corpus, "val")
    # Human chunks as long as the longest setting's typical sample: a degenerate setting
    # (one glued "word" per sample) must not shrink the baseline to a few noisy words.
    words_per_chunk = max(MIN_WORDS_PER_CHUNK, max(
        int(np.median([s["metrics"]["num_words"] for s in samples if s["setting"] == name]))
        for name in settings))
    human = human_baseline(human_docs, lexicon, words_per_chunk, max_human_chunks)
    human["source"] = f"val split of {corpus_path}"
    for s in samples:
        s["verdict"] = verdict(s["metrics"], human)
    summary = {}
    for name in settings:
        texts = [s["text"] for s in samples if s["setting"] == name]
        agg = aggregate_metrics(texts, lexicon)
        labels = [s["verdict"]["label"] for s in samples if s["setting"] == name]
        agg["verdict"] = verdict(agg, human, single=False)
        agg["sample_verdicts"] = {label: labels.count(label) for label in sorted(set(labels))}
        summary[name] = agg
    return {
        **run_record("kerasvq.evaluation.samples", SAMPLES_SCHEMA_VERSION, model_path, model_key, cfg, resolved),
        "lexicon": {"sources": list(lexicon.sources), "size": len(lexicon)},
        "settings": {name: s.to_dict() for name, s in settings.items()},
        "human_baseline": human,
        "summary": summary,
        "samples": samples,
    }
