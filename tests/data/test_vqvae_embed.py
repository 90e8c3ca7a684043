import h5py
import numpy as np
import pytest

from kerasvq.cli import main
from kerasvq.data.english_sentences import html_blocks, is_prose, roff_blocks, split_sentences

SENTENCES = [
    "The package manager resolves dependencies before installing anything.",
    "A kernel module can be loaded at boot time or on demand.",
    "Backups should be tested by restoring them on a spare machine.",
    "The network interface is configured by a file in the etc directory.",
]


def test_sentence_extraction_keeps_prose_and_drops_code():
    page = ("<html><head><title>T</title></head><body><p>Debian is a free operating system. "
            "It ships thousands of packages!</p><pre>apt-get install foo; echo done.</pre>"
            "<p>Too short.</p></body></html>")
    sentences = split_sentences(html_blocks(page))
    assert sentences == ["Debian is a free operating system.", "It ships thousands of packages!"]
    roff = ".TH LS 1\n.SH NAME\nls \\- list directory contents\n.SH DESCRIPTION\n\\fBls\\fR lists information about the files in the current directory.\n"
    assert "ls lists information about the files in the current directory." in split_sentences(roff_blocks(roff))
    assert not is_prose("Set x = $HOME/bin when the path is /usr/local/bin/ here.")


def test_embed_command_writes_normalized_vectors(tmp_path, capsys):
    pytest.importorskip("keras_hub")
    pytest.importorskip("safetensors")
    text = tmp_path / "s.txt"
    text.write_text("\n".join(SENTENCES) + "\n\n")
    out = tmp_path / "s.h5"
    assert main(["embed", str(text), str(out), "--batch-size", "3"]) == 0
    with h5py.File(out) as f:
        x = f["embeddings"][:]
        assert x.shape == (4, 384) and f["texts"][0].decode() == SENTENCES[0]
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    sims = x @ x.T
    assert sims[0, 0] > sims[0, 1] and np.all(sims[np.triu_indices(4, 1)] < 0.9)
    # never overwrite a user's file without --force
    assert main(["embed", str(text), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_embed_command_rejects_empty_input(tmp_path, capsys):
    empty = tmp_path / "e.txt"
    empty.write_text("\n\n")
    assert main(["embed", str(empty), str(tmp_path / "e.h5")]) == 2
    assert "no sentences" in capsys.readouterr().err


def test_length_bucketing_gives_the_vectors_of_unpadded_texts():
    """Sorting by length and padding each batch to its own longest text must not change a
    vector: each text embedded alone at full width is the reference."""
    pytest.importorskip("keras_hub")
    pytest.importorskip("safetensors")
    from kerasvq.data.embedders import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    texts = SENTENCES + ["Short.", "Apt installs packages from the configured mirrors and verifies "
                         "their signatures before unpacking them onto the disk of the machine."]
    bucketed = embedder.embed(texts, batch_size=2)
    token_ids, segment_ids = embedder.packer(embedder.tokenizer(texts))
    token_ids = np.asarray(token_ids)
    alone = np.concatenate([
        embedder._pooled(token_ids[i:i + 1], np.asarray(segment_ids)[i:i + 1],
                         token_ids[i:i + 1] != embedder.tokenizer.pad_token_id)
        for i in range(len(texts))
    ])
    np.testing.assert_allclose(bucketed, alone, atol=2e-5)
