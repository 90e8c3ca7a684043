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
import io
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

# sentencepiece splits its EM work by thread and the pieces it picks depend on the split, so
# the thread count is fixed rather than taken from the machine: the same corpus and seed give
# the same tokenizer file on any machine (tests/data/test_tokenizer_determinism.py).
TRAINING_THREADS = 4

# Tokenizer training reads at most this many training lines, a seeded sample when there are
# more, so its cost stops growing with the corpus (sentencepiece's input_sentence_size).
DEFAULT_SAMPLE_SENTENCES = 2_000_000


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
    def train(cls, documents, out_dir, vocab_size=4000, model_type="unigram", seed=1337,
              sample_sentences=DEFAULT_SAMPLE_SENTENCES):
        """Trains on `documents` (an iterable of strings) and saves the model in `out_dir`.

        Args:
            documents: iterable of training texts, one sentence or document each.
            out_dir: folder for `spm_<type>_<vocab>.model`, written only when complete.
            vocab_size: number of pieces.
            model_type: "unigram" or "bpe".
            seed: sentencepiece's random seed (the sentence sample and its shuffle).
            sample_sentences: at most this many lines are used, a seeded sample of all of them.

        Returns:
            The trained `Tokenizer`. Its file depends only on the documents and these
            arguments: no path or machine setting is written into it.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / cls.model_filename(vocab_size, model_type)
        spm.set_random_generator_seed(seed)
        remove_orphans(out_dir, target.name)
        # The model comes back in memory: with a model_prefix sentencepiece records that
        # (temporary, random) path inside the file, and two trainings would never match.
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(documents),
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                byte_fallback=True,
                character_coverage=0.9995,
                max_sentence_length=MAX_SENTENCE_LENGTH,
                input_sentence_size=sample_sentences,
                shuffle_input_sentence=True,
                bos_id=-1,
                eos_id=1,
                unk_id=0,
                pad_id=-1,
                num_threads=TRAINING_THREADS,
                minloglevel=2,
            )
        except RuntimeError as e:
            raise UserError(training_failure(str(e), vocab_size)) from None
        # Move into place only when complete, so an interrupted run leaves no half model.
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=temp_prefix(target.name))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(model.getvalue())
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
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
