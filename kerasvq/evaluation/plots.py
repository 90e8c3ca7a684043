"""PNG figures for the thesis report, drawn headless (matplotlib's Agg backend).

Example:
    >>> plot_loss_curves(comparison["models"], "report/loss_curves.png")
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_loss_curves(models: list[dict], path) -> Path | None:
    """Train (solid) and validation (dashed) unsmoothed cross-entropy per epoch, per model;
    None when no model has a training history."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for i, m in enumerate(models):
        epochs = (m.get("training") or {}).get("epochs") or []
        if not epochs:
            continue
        color = f"C{i}"
        x = [e["epoch"] for e in epochs]
        ax.plot(x, [e.get("cross_entropy") for e in epochs], "-o", color=color, label=f"{m['label']} train")
        ax.plot(x, [e.get("val_cross_entropy") for e in epochs], "--s", color=color, label=f"{m['label']} val")
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy (nats/token, unsmoothed)")
    ax.set_title("Train and validation loss per epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_lm_bars(models: list[dict], path) -> Path:
    """Token perplexity, word perplexity (log scale) and bits per byte, one bar per model."""
    plt = _pyplot()
    labels = [m["label"] for m in models]
    panels = [("perplexity", "token perplexity", False), ("word_perplexity", "word perplexity (log)", True),
              ("bits_per_byte", "bits per byte", False)]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for ax, (key, title, log) in zip(axes, panels):
        values = [m["metrics"][key] for m in models]
        bars = ax.bar(range(len(models)), values, color=[f"C{i}" for i in range(len(models))])
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=8)
        ax.set_xticks(range(len(models)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_title(title)
        if log:
            ax.set_yscale("log")
    fig.suptitle("Held-out metrics (lower is better; bits/byte and word perplexity compare across tokenizers)", fontsize=9)
    return _save(fig, path)


DEGENERATION_METRICS = ("word_validity", "distinct_1", "distinct_2", "seq_rep_4")


def plot_degeneration(comparison: dict, path) -> Path:
    """Degeneration metrics of every model × setting next to the human baseline."""
    plt = _pyplot()
    groups = [("human", comparison["human_baseline"])]
    for m in comparison["models"]:
        groups += [(f"{m['label']} {setting}", d) for setting, d in m["degeneration"].items()]
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(DEGENERATION_METRICS) * len(groups) / 3), 4))
    width = 0.8 / len(groups)
    x = np.arange(len(DEGENERATION_METRICS))
    for i, (name, d) in enumerate(groups):
        values = [d.get(k) if d.get(k) is not None and not math.isnan(d.get(k)) else 0.0 for k in DEGENERATION_METRICS]
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=name,
               color="black" if name == "human" else f"C{i - 1}", alpha=0.85)
    ax.set_xticks(x, [k.replace("_", "-") for k in DEGENERATION_METRICS])
    ax.set_ylim(0, 1.05)
    ax.set_title("Generated text vs held-out human text")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_attention_layer(weights: np.ndarray, tokens: list[str], path, title: str) -> Path:
    """One layer's attention (heads, S, S) as a grid of heatmaps, queries down, keys across."""
    plt = _pyplot()
    heads = weights.shape[0]
    cols = min(4, heads)
    rows = math.ceil(heads / cols)
    size = max(3.0, 0.22 * len(tokens) + 1.5)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for h in range(rows * cols):
        ax = axes[h // cols][h % cols]
        if h >= heads:
            ax.axis("off")
            continue
        ax.imshow(weights[h], cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_title(f"head {h}", fontsize=9)
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=6)
        ax.set_yticks(range(len(tokens)), tokens, fontsize=6)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
