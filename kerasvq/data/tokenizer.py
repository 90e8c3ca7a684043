"""A SentencePiece tokenizer trained once per version and identified by its SHA-256.

Byte fallback is on, so accents, emoji and odd characters always round-trip instead of
becoming `<unk>`. The hash is saved with every model trained on the tokenizer and checked
when the model is loaded again.

Example:
    >>> tok = Tokenizer.train(train_docs, "versions/v5-transformer/mappings", vocab_size=4000)
    >>> ids = tok.encode(["Olá, mundo!"])[0]
    >>> tok.decode(ids)
    'Olá, mundo!'
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import sentencepiece as spm

from kerasvq.common.temp_files import remove_orphans, temp_prefix
from kerasvq.common.errors import UserError

# Longer lines are left out of tokenizer training (sentencepiece's max_sentence_length).
MAX_SENTENCE_LENGTH = 1 << 16


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def training_failure(message: str, vocab_size: int) -> str:
    """sentencepiece's internal error text, said in the user's terms where it is a known case."""
    too_high = re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", message)
    if too_high:
        return (f"field 'data.vocab_size' ({vocab_size}) is larger than this corpus supports: the "
                f"largest vocabulary its training documents give is {too_high.group(2)}")
    if "!sentences_.empty()" in message:
        return ("too few sentences to train a tokenizer: no training document has a line of at most "
                f"{MAX_SENTENCE_LENGTH} bytes; split the corpus into lines (one document or sentence each)")
    return f"tokenizer training failed on this corpus: {message}"


class Tokenizer:
    """Wraps a trained SentencePiece model file."""

    def __init__(self, model_path: str | Path):
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise UserError(f"{self.model_path}: tokenizer model not found")
        try:
            self._sp = spm.SentencePieceProcessor(model_file=str(self.model_path))
        except (RuntimeError, OSError):
            raise UserError(f"{self.model_path}: not a readable sentencepiece model") from None
        self.sha256 = file_sha256(self.model_path)

    @staticmethod
    def model_filename(vocab_size: int, model_type: str) -> str:
        return f"spm_{model_type}_{vocab_size}.model"

    @classmethod
    def train(cls, documents, out_dir, vocab_size=4000, model_type="unigram", seed=1337):
        """Trains on `documents` (an iterable of strings) and saves the model in `out_dir`."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / cls.model_filename(vocab_size, model_type)
        spm.set_random_generator_seed(seed)
        remove_orphans(out_dir, target.name)
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=temp_prefix(target.name)) as tmp:
            prefix = Path(tmp) / "spm"
            try:
                spm.SentencePieceTrainer.train(
                    sentence_iterator=iter(documents),
                    model_prefix=str(prefix),
                    vocab_size=vocab_size,
                    model_type=model_type,
                    byte_fallback=True,
                    character_coverage=0.9995,
                    max_sentence_length=MAX_SENTENCE_LENGTH,
                    input_sentence_size=2_000_000,
                    shuffle_input_sentence=True,
                    bos_id=-1,
                    eos_id=1,
                    unk_id=0,
                    pad_id=-1,
                    num_threads=os.cpu_count() or 1,
                    minloglevel=2,
                )
            except RuntimeError as e:
                raise UserError(training_failure(str(e), vocab_size)) from None
            # Move into place only when complete, so an interrupted run leaves no half model.
            os.replace(f"{prefix}.model", target)
        return cls(target)

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    @property
    def eos_id(self) -> int:
        return self._sp.eos_id()

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, encoded on all CPU cores."""
        return self._sp.encode(list(texts), num_threads=os.cpu_count() or 1)

    def decode(self, ids) -> str:
        return self._sp.decode([int(i) for i in np.asarray(ids).ravel()])

    def id_to_piece(self, token_id: int) -> str:
        return self._sp.id_to_piece(int(token_id))
