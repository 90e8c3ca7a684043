"""`kerasvq <verb>`: one entry point; each verb lives in its own module of `kerasvq.commands`.

A command module defines `register(subparsers)`, which adds its parser and sets
`func=<callable(args) -> int>`. Bad input raises `UserError`, printed here as one line with
exit status 2.

Example:
    $ kerasvq train --config versions/v5-transformer/config.json --set train.epochs=1
"""

from __future__ import annotations

import argparse
import errno
import importlib
import pkgutil
import sys
from pathlib import Path

from kerasvq.common.errors import UserError


DISK_ERRORS = (errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EDQUOT)


def build_parser() -> argparse.ArgumentParser:
    import kerasvq.commands

    parser = argparse.ArgumentParser(prog="kerasvq", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="<verb>")
    for info in sorted(pkgutil.iter_modules(kerasvq.commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"kerasvq.commands.{info.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # A folder the user pointed at cannot take the output (read-only, full, not ours):
        # that is bad input too. Every writer goes through a temporary + rename, so what the
        # user had there is untouched.
        if e.errno not in DISK_ERRORS or not e.filename:
            raise
        folder = Path(e.filename).parent
        print(f"error: {folder}: {e.strerror} (writing {Path(e.filename).name}); nothing there was replaced",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
