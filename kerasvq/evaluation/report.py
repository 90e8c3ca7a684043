"""A thesis-ready markdown report with PNG figures, built from a comparison record.

Sections: held-out metrics (table + bars), training curves, degeneration metrics beside human
text (table + bars), sample excerpts with their verdicts, attention heatmaps when given, and
the hashes that identify each model. Every figure is drawn headless (matplotlib Agg).

Example:
    >>> build_report(comparison, "analysis/artifacts/report")
    PosixPath('analysis/artifacts/report/report.md')
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from kerasvq.evaluation.comparison import comparison_markdown
from kerasvq.metrics import text as text_metrics
from kerasvq.evaluation.plots import plot_degeneration, plot_lm_bars, plot_loss_curves


def _quote(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def build_report(comparison: dict, out_dir, attention_pngs: list | None = None,
                 title: str = "Language-model evaluation") -> Path:
    """Writes `report.md` and its figures into `out_dir`; returns the markdown path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models = comparison["models"]
    rel = lambda p: os.path.relpath(p, out_dir)  # noqa: E731
    lm_png = plot_lm_bars(models, out_dir / "lm_metrics.png")
    curves_png = plot_loss_curves(models, out_dir / "loss_curves.png")
    degen_png = plot_degeneration(comparison, out_dir / "degeneration.png")
    tables = comparison_markdown(comparison).split("\n\n")

    h = comparison["human_baseline"]
    md = [
        f"# {title}",
        "",
        f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC} by `kerasvq` from "
        f"{len(models)} model(s): " + ", ".join(f"**{m['label']}** (`{m['key']}`)" for m in models) + ".",
        "",
        "## 1. Held-out language-model metrics",
        "",
        "Loss, perplexity and accuracy are per token and unsmoothed. Token perplexity depends on the "
        "tokenizer; **bits per byte** (summed negative log-likelihood over the text's UTF-8 bytes, "
        "in bits) and **word perplexity** (exp of the summed nats over whitespace words) measure "
        "the same text whatever the tokenizer, so they are the numbers that compare v4 with v5. "
        f"Held-out text: {models[0]['data']['split']} split of `{models[0]['data']['corpus']}` "
        f"({models[0]['data']['documents']:,} documents, {models[0]['data']['words']:,} words).",
        "",
        tables[0],
        "",
        f"![Held-out metrics]({rel(lm_png)})",
        "",
        "## 2. Training curves",
        "",
    ]
    if curves_png:
        md += [
            "Unsmoothed cross-entropy per epoch on the training data (solid) and the validation "
            "split (dashed). The train/val gap in the table above is taken at the best epoch.",
            "",
            f"![Loss curves]({rel(curves_png)})",
        ]
    else:
        md.append("No training history was found next to these models.")
    md += [
        "",
        "## 3. Degeneration: generated text beside human text",
        "",
        "Perplexity cannot tell fluent text from gibberish, so samples from fixed pt-BR prompts are "
        "scored on the surface: share of words found in a Portuguese word list (word validity), "
        "mean word length, distinct-n (unique n-grams / all n-grams) and seq-rep-4 (repeated "
        "4-grams inside one sample). Every number sits next to the same number on held-out human "
        f"text cut to the samples' length ({h.get('words_per_chunk')} words, {h['num_texts']} chunks). "
        "A sample is **gibberish** when its word validity falls more than "
        f"{text_metrics.GIBBERISH_VALIDITY_DROP:.2f} below the human value (or more than "
        f"{text_metrics.GIBBERISH_SOFT_VALIDITY_DROP:.2f} below with a mean word length off by over "
        f"{text_metrics.GIBBERISH_WORD_LENGTH_RATIO:.0%}), and **repetitive** when seq-rep-4 exceeds the "
        f"human value by more than {text_metrics.REPETITION_SEQ_REP_RISE:.2f} or distinct-2 drops below "
        f"{text_metrics.REPETITION_DISTINCT_2_RATIO:.0%} of it. A single sample must also fall "
        "outside the 5th/95th percentile of the human chunks, so about 5% of human chunks would "
        "be flagged too; the aggregate verdict over all samples of a setting is the one to read. "
        "These metrics catch broken words and loops, not incoherence: a salad of real short words "
        "passes word validity, and only its low mean word length gives it away.",
        "",
        tables[1].strip(),
        "",
        f"![Degeneration metrics]({rel(degen_png)})",
        "",
        "## 4. Sample excerpts",
        "",
    ]
    for m in models:
        md += [f"### {m['label']}", ""]
        for e in m["excerpts"]:
            md += [f"- *{e['setting']}* — **{e['prompt']}** {_quote(e['text'])} `[{e['verdict']}]`"]
        md.append("")
    if attention_pngs:
        md += ["## 5. Attention", "",
               "Attention weights of one prompt, one figure per layer, one panel per head "
               "(rows: the token attending; columns: the tokens it attends to).", ""]
        md += [f"![{Path(p).stem}]({rel(p)})" for p in attention_pngs]
        md.append("")
    md += ["## Reproducibility", "", "| model | version/run | config sha256 | tokenizer sha256 |", "|---|---|---|---|"]
    md += [f"| {m['label']} | {m['version']}/{m['run']} | `{m['config_sha256'][:16]}` | `{m['tokenizer_sha256'][:16]}` |"
           for m in models]
    path = out_dir / "report.md"
    path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return path
