"""Loading a saved `.keras` model, with one line when the file is damaged.

A `.keras` file is a zip archive holding `config.json`, `metadata.json` and
`model.weights.h5`. A kill during a save, a full disk, a copy cut short or another file under
that name leave something Keras reports as "File not found" (although the file exists) or as
an h5py traceback. The archive is checked first (a zip, every member's checksum, the members
Keras reads, a JSON config), so the message says that the file is damaged and which command
writes it again.

Example:
    >>> model = load_keras_model("versions/vqvae-wiki/models/vqvae.keras", "kerasvq vqvae train")
    Traceback (most recent call last):
    kerasvq.common.errors.UserError: versions/vqvae-wiki/models/vqvae.keras: not a readable Keras model
    (truncated or corrupt: not a zip archive); it is written by 'kerasvq vqvae train'
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

from kerasvq.common.errors import UserError

KERAS_MEMBERS = ("config.json", "model.weights.h5")


def check_keras_file(path: str | Path, written_by: str) -> None:
    """Raises a one-line `UserError` unless `path` is an intact `.keras` archive.

    Args:
        path: the `.keras` file.
        written_by: the command that writes this file (named in the message), e.g.
            `"kerasvq train"`.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: model file not found; it is written by '{written_by}'")

    def damaged(why: str) -> UserError:
        return UserError(f"{path}: not a readable Keras model (truncated or corrupt: {why}); "
                         f"it is written by '{written_by}'")

    if path.stat().st_size == 0:
        raise damaged("0 bytes")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [m for m in KERAS_MEMBERS if m not in names]
            if missing:
                raise damaged(f"no {missing[0]} in the archive")
            failed = archive.testzip()
            if failed is not None:
                raise damaged(f"{failed} fails its checksum")
            json.loads(archive.read("config.json"))
    except zipfile.BadZipFile:
        raise damaged("not a zip archive") from None
    # zipfile raises NotImplementedError for a member stored with a compression method it
    # cannot read: a damaged or foreign file, not unfinished code here.
    except (EOFError, zlib.error, OSError, NotImplementedError) as e:
        raise damaged(" ".join(str(e).split()) or type(e).__name__) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise damaged("config.json is not JSON") from None


def load_keras_model(path: str | Path, written_by: str, compile: bool = True):
    """`keras.saving.load_model(path)` after `check_keras_file(path, written_by)`.

    Args:
        path: the `.keras` file.
        written_by: the command that writes it, named when the file is missing or damaged.
        compile: whether to restore the training configuration too.

    Returns:
        The loaded Keras model.
    """
    import keras

    check_keras_file(path, written_by)
    return keras.saving.load_model(path, compile=compile)
