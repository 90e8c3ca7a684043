"""From a config to token streams: corpus → document split → tokenizer → train/val streams.

The tokenizer is trained on the training documents only, once per version, and reused from
`versions/<name>/mappings/` afterwards.

Example:
    >>> data = load_lm_data(cfg, mappings_dir="versions/v5-transformer/mappings")
    >>> data.train_stream.dtype, data.tokenizer.sha256[:8]
    (dtype('uint16'), '3fa1c2d0')
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kerasvq.config.lm import LMConfig
from kerasvq.data.corpus import read_documents, resolve_corpus, split_documents
from kerasvq.data.tokenizer import Tokenizer
from kerasvq.data.windows import token_stream
from kerasvq.common.errors import UserError


@dataclasses.dataclass
class LMData:
    corpus_path: Path
    train_docs: list[str]
    val_docs: list[str]
    tokenizer: Tokenizer
    train_stream: np.ndarray
    val_stream: np.ndarray
    skipped_lines: int = 0

    def summary(self) -> dict:
        words = lambda docs: sum(len(d.split()) for d in docs)  # noqa: E731
        return {
            "corpus": str(self.corpus_path),
            "train_documents": len(self.train_docs),
            "val_documents": len(self.val_docs),
            "train_words": words(self.train_docs),
            "val_words": words(self.val_docs),
            "train_tokens": int(len(self.train_stream)),
            "val_tokens": int(len(self.val_stream)),
            # Each document's UTF-8 bytes plus its line break, which the EOS token stands for.
            "val_bytes": sum(len(d.encode("utf-8")) + 1 for d in self.val_docs),
            "non_utf8_lines_skipped": self.skipped_lines,
        }


def load_tokenizer(cfg: LMConfig, mappings_dir, train_docs=None, log=print) -> Tokenizer:
    """The version's tokenizer: loaded if saved, otherwise trained on `train_docs` and saved."""
    path = Path(mappings_dir) / Tokenizer.model_filename(cfg.data.vocab_size, cfg.data.tokenizer_type)
    if path.is_file():
        tokenizer = Tokenizer(path)
        log(f"tokenizer: reusing {path} (sha256 {tokenizer.sha256[:12]})")
    elif train_docs is None:
        raise UserError(f"{path}: tokenizer not found; train this version first")
    else:
        log(f"tokenizer: training sentencepiece {cfg.data.tokenizer_type} {cfg.data.vocab_size} "
            f"on {len(train_docs)} training documents")
        tokenizer = Tokenizer.train(
            train_docs, mappings_dir, cfg.data.vocab_size, cfg.data.tokenizer_type, cfg.data.split_seed,
            sample_sentences=cfg.data.tokenizer_sample_sentences,
        )
        log(f"tokenizer: saved {path} (sha256 {tokenizer.sha256[:12]})")
    if tokenizer.vocab_size != cfg.data.vocab_size:
        raise UserError(
            f"{path}: tokenizer has {tokenizer.vocab_size} pieces but data.vocab_size is "
            f"{cfg.data.vocab_size}"
        )
    return tokenizer


def load_lm_data(cfg: LMConfig, mappings_dir, log=print) -> LMData:
    corpus_path = resolve_corpus(cfg.data.corpus)
    corpus = read_documents(corpus_path, max_docs=cfg.data.max_docs)
    train_docs, val_docs = split_documents(corpus.documents, cfg.data.val_fraction, cfg.data.split_seed)
    log(f"corpus: {corpus_path}: {len(train_docs)} train / {len(val_docs)} val documents"
        + (f", {corpus.skipped_non_utf8} non-UTF-8 lines skipped" if corpus.skipped_non_utf8 else ""))
    tokenizer = load_tokenizer(cfg, mappings_dir, train_docs, log)
    train_stream = token_stream(tokenizer.encode(train_docs), tokenizer.eos_id)
    val_stream = token_stream(tokenizer.encode(val_docs), tokenizer.eos_id)
    return LMData(corpus_path, train_docs, val_docs, tokenizer, train_stream, val_stream,
                  corpus.skipped_non_utf8)
