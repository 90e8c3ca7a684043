"""Temporary files that name their owner, so a later run can clean up after a killed one.

A build writes into `.<name>.<pid>.<random>` next to its target and renames it into place when
complete. A `kill -9` leaves that temporary behind; the next build of the same target removes
every one whose process is gone (same host: the pid is checked with `os.kill(pid, 0)`), and
leaves those of a build still running.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def temp_prefix(name: str) -> str:
    """The prefix for this process's temporaries of `name` (for mkstemp / mkdtemp)."""
    return f".{name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphans(folder: Path, name: str) -> list[Path]:
    """Removes the temporaries of `name` in `folder` left by processes that no longer run;
    returns what was removed."""
    removed = []
    if not Path(folder).is_dir():
        return removed
    for path in Path(folder).glob(f".{name}.*"):
        pid = path.name[len(name) + 2:].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
