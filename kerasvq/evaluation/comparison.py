"""Puts several models' results and samples side by side: a comparison dict and markdown.

Example:
    >>> comp = compare([results_v4, results_v5], [samples_v4, samples_v5])
    >>> print(comparison_markdown(comp))
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path

from kerasvq.common.errors import UserError

COMPARISON_SCHEMA_VERSION = 1
EXCERPTS_PER_SETTING = 3


def _excerpts(samples: dict) -> list[dict]:
    out = []
    for setting in samples["settings"]:
        chosen = [s for s in samples["samples"] if s["setting"] == setting][:EXCERPTS_PER_SETTING]
        out += [{"setting": setting, "prompt": s["prompt"], "text": s["text"],
                 "verdict": s["verdict"]["label"]} for s in chosen]
    return out


def compare(results: list[dict], samples: list[dict], labels: list[str] | None = None) -> dict:
    """One entry per model (results[i] and samples[i] describe the same model)."""
    if len(results) != len(samples) or not results:
        raise UserError("compare needs one results and one samples record per model")
    for r, s in zip(results, samples):
        if r["config_sha256"] != s["config_sha256"]:
            raise UserError(f"results and samples of {r['model_key']!r} come from different configs")
    datasets = {(r["data"]["corpus"], r["data"]["split"], r["data"]["bytes"]) for r in results}
    models = []
    for i, (r, s) in enumerate(zip(results, samples)):
        models.append({
            "key": r["model_key"],
            "label": (labels[i] if labels else None) or r["model_key"],
            "version": r["version"],
            "run": r["run"],
            "architecture": r["architecture"],
            "parameters": r["parameters"],
            "config_sha256": r["config_sha256"],
            "tokenizer_sha256": r["tokenizer_sha256"],
            "data": r["data"],
            "metrics": r["metrics"],
            "training": r["training"],
            "degeneration": s["summary"],
            "human_baseline": s["human_baseline"],
            "excerpts": _excerpts(s),
        })
    return {
        "schema_version": COMPARISON_SCHEMA_VERSION,
        "kind": "kerasvq.evaluation.comparison",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "same_data": len(datasets) == 1,
        "human_baseline": samples[0]["human_baseline"],
        "models": models,
    }


def _fmt(value, digits=3):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def comparison_markdown(comp: dict) -> str:
    """Two markdown tables: held-out LM numbers, and degeneration metrics beside human text."""
    lines = [
        "| model | arch | params | tokens | val loss (nats/token) | token ppl | accuracy | bits/byte | word ppl | train/val gap |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in comp["models"]:
        x, t = m["metrics"], m["training"] or {}
        lines.append(
            f"| {m['label']} | {m['architecture']} | {_fmt(m['parameters'])} | {_fmt(m['data']['tokens'])} | "
            f"{_fmt(x['loss_nats'])} | {_fmt(x['perplexity'], 2)} | {_fmt(x['token_accuracy'])} | "
            f"{_fmt(x['bits_per_byte'])} | {_fmt(x['word_perplexity'], 1)} | {_fmt(t.get('gap'))} |"
        )
    if not comp["same_data"]:
        lines.append("\n**Warning:** the models were evaluated on different text; the rows do not compare.")
    lines += [
        "",
        "| model | setting | word validity | mean word length | distinct-1 | distinct-2 | distinct-3 | seq-rep-4 | verdict (aggregate) | samples |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    h = comp["human_baseline"]
    lines.append(
        f"| human (held-out val) | {h.get('words_per_chunk')}-word chunks | {_fmt(h['word_validity'])} | "
        f"{_fmt(h['mean_word_length'], 2)} | {_fmt(h['distinct_1'])} | {_fmt(h['distinct_2'])} | "
        f"{_fmt(h['distinct_3'])} | {_fmt(h['seq_rep_4'])} | – | {h['num_texts']} |"
    )
    for m in comp["models"]:
        for setting, d in m["degeneration"].items():
            counts = ", ".join(f"{k} {v}" for k, v in d["sample_verdicts"].items())
            lines.append(
                f"| {m['label']} | {setting} | {_fmt(d['word_validity'])} | {_fmt(d['mean_word_length'], 2)} | "
                f"{_fmt(d['distinct_1'])} | {_fmt(d['distinct_2'])} | {_fmt(d['distinct_3'])} | "
                f"{_fmt(d['seq_rep_4'])} | {d['verdict']['label']} | {counts} |"
            )
    return "\n".join(lines) + "\n"


def evaluate_and_sample(models: list[tuple[str, object]], prompts: list[str], settings: dict | None = None,
                        corpus: str | None = None, max_tokens: int | None = None, log=print):
    """Loads each (key, model path) once; returns (results list, samples list) on the same
    held-out text (`corpus`, else each run's own val split) and the same prompts."""
    from kerasvq.evaluation.lm import evaluate_run
    from kerasvq.evaluation.trained_model import load_trained_model
    from kerasvq.evaluation.samples import sample_run

    results, samples = [], []
    for key, path in models:
        loaded = load_trained_model(path)
        log(f"{key}: evaluating {path}")
        results.append(evaluate_run(path, key, corpus, max_tokens=max_tokens, loaded=loaded))
        log(f"{key}: sampling {len(prompts)} prompts")
        samples.append(sample_run(path, prompts, settings, key, corpus, loaded=loaded))
    return results, samples


def gather_evaluations(models: list[tuple[str, object]], reuse: list, prompts: list[str], settings: dict | None = None,
                       corpus: str | None = None, max_tokens: int | None = None, log=print):
    """(results list, samples list) for each (key, model path): read from the first `reuse`
    folder holding that key's results and samples JSON, evaluated otherwise."""
    reused = [key for key, _ in models if _evaluation_folder(key, reuse) is not None]
    fresh = [(key, path) for key, path in models if key not in reused]
    results, samples = {}, {}
    for key, r, s in zip(reused, *load_evaluations(reused, reuse)):
        results[key], samples[key] = r, s
    for (key, _), r, s in zip(fresh, *evaluate_and_sample(fresh, prompts, settings, corpus, max_tokens, log)):
        results[key], samples[key] = r, s
    return [results[key] for key, _ in models], [samples[key] for key, _ in models]


def load_evaluations(keys: list[str], folders: list) -> tuple[list[dict], list[dict]]:
    """(results list, samples list) for `keys` read from `results_<key>.json` and
    `samples_<key>.json` in the first of `folders` that has both, as `compare_versions.py`
    writes them: combines models evaluated in separate runs or on other machines."""
    from kerasvq.config.base import load_json

    results, samples = [], []
    for key in keys:
        folder = _evaluation_folder(key, folders)
        if folder is None:
            raise UserError(f"no results_{key}.json with samples_{key}.json in {', '.join(map(str, folders))}")
        results.append(load_json(folder / f"results_{key}.json"))
        samples.append(load_json(folder / f"samples_{key}.json"))
    return results, samples


def _evaluation_folder(key: str, folders: list) -> Path | None:
    """The first of `folders` holding both `results_<key>.json` and `samples_<key>.json`."""
    return next((Path(f) for f in folders
                 if (Path(f) / f"results_{key}.json").is_file() and (Path(f) / f"samples_{key}.json").is_file()),
                None)
