"""`kerasvq corpus build|stats`: build the default pt-BR corpus, or count a corpus.

Example:
    $ kerasvq corpus build                 # Debian docs + dante-corpora, cached
    $ kerasvq corpus build --pypi-only --output ptbr-pypi.txt
    $ kerasvq corpus stats my_corpus.jsonl.gz
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("corpus", help="build the default pt-BR corpus or count one",
                                   description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="corpus_command", required=True, metavar="<build|stats>")
    build = verbs.add_parser("build", help="build the default pt-BR corpus into the cache")
    build.add_argument("--pypi-only", action="store_true",
                       help="only dante-corpora from PyPI (no apt); default output ptbr-pypi.txt")
    build.add_argument("--force", action="store_true", help="rebuild even if it exists")
    build.add_argument("--output", type=Path, help="where to write it (default: the cache)")
    build.set_defaults(func=run_build)
    stats = verbs.add_parser("stats", help="documents, words, bytes of a corpus")
    stats.add_argument("path", help="corpus file or folder, or 'default'")
    stats.set_defaults(func=run_stats)


def run_build(args) -> int:
    from kerasvq.data.default_corpus import (
        build_default_corpus,
        default_corpus_path,
        pypi_corpus_path,
    )

    output = args.output or (pypi_corpus_path() if args.pypi_only else default_corpus_path())
    build_default_corpus(output, pypi_only=args.pypi_only, force=args.force)
    return 0


def run_stats(args) -> int:
    from kerasvq.data.corpus import read_documents, resolve_corpus

    corpus = read_documents(resolve_corpus(args.path))
    print(f"files:                  {len(corpus.files)}")
    print(f"documents:              {len(corpus.documents)}")
    print(f"words:                  {corpus.words}")
    print(f"characters:             {sum(len(d) for d in corpus.documents)}")
    print(f"bytes (UTF-8 text):     {sum(len(d.encode('utf-8')) for d in corpus.documents)}")
    print(f"non-UTF-8 lines skipped: {corpus.skipped_non_utf8}")
    return 0
