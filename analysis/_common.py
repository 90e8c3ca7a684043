"""What every analysis script shares: it is a `kerasvq` verb under the name the seed's users know.

The arguments, defaults and outputs live in the verb's module (`kerasvq/commands/<verb>.py`);
a script only puts this checkout on `sys.path` (so it runs without installing the package)
and hands its own arguments to `kerasvq.cli.main`, which prints a bad input as one
`error: ...` line and exits with status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run_verb(*verb: str) -> None:
    """Exits with `kerasvq <verb...> <this script's arguments>`'s status."""
    from kerasvq.cli import main

    sys.exit(main([*verb, *sys.argv[1:]]))
