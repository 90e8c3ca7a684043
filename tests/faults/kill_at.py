"""Runs `kerasvq <args>` and kills itself with SIGKILL at a chosen moment, as `kill -9` would.

    python tests/faults/kill_at.py <hook> <n> <kerasvq args...>

Hooks (n counts calls from 1):
    weights   the n-th checkpoint weights file is half written, then the process dies
    model     the n-th `.keras` model file is half written, then the process dies
    history   the n-th history write after a checkpoint dies before writing
"""

import os
import signal
import sys
from pathlib import Path


def _die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _half_then_die(path):
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _die()


def main():
    hook, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    import keras

    from kerasvq.training import callbacks

    calls = {"n": 0}

    def counted():
        calls["n"] += 1
        return calls["n"] == n

    if hook in ("weights", "model"):
        name = "save_weights" if hook == "weights" else "save"
        original = getattr(keras.Model, name)

        def save(self, filepath, *a, **k):
            original(self, filepath, *a, **k)
            if counted():
                _half_then_die(filepath)

        setattr(keras.Model, name, save)
    elif hook == "history":
        original = callbacks.HistoryWriter.write

        def write(self, status, **extra):
            if status == "running" and self.epochs and counted():
                _die()
            original(self, status, **extra)

        callbacks.HistoryWriter.write = write
    from kerasvq.cli import main as cli

    sys.exit(cli(args))


if __name__ == "__main__":
    main()
