"""Where a training run's artifacts live, and loading a trained model safely.

A run `<run>` of version `<v>` writes:
    versions/<v>/models/<run>.keras            the model (best validation loss)
    versions/<v>/models/<run>.config.json      the resolved config it was trained with
    versions/<v>/logs/train_<run>.json         per-epoch history, status, data sizes
    versions/<v>/logs/tensorboard/<run>/       TensorBoard scalars (train/ and validation/)
    versions/<v>/logs/backup/<run>/            checkpoint generations while unfinished
    versions/<v>/mappings/                     the version's tokenizer

Example:
    >>> model, resolved, tokenizer = load_trained_model("versions/v5-transformer/models/v5_fixed.keras")
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kerasvq.config.base import from_dict, load_json
from kerasvq.config.lm import LMConfig
from kerasvq.errors import UserError
from kerasvq.model_file import load_keras_model
from kerasvq.paths import version_dir

WRITTEN_BY = "kerasvq train"


@dataclasses.dataclass(frozen=True)
class RunPaths:
    version: str
    run: str

    @property
    def root(self) -> Path:
        return version_dir(self.version)

    @property
    def model(self) -> Path:
        return self.root / "models" / f"{self.run}.keras"

    @property
    def resolved_config(self) -> Path:
        return self.root / "models" / f"{self.run}.config.json"

    @property
    def history(self) -> Path:
        return self.root / "logs" / f"train_{self.run}.json"

    @property
    def tensorboard(self) -> Path:
        return self.root / "logs" / "tensorboard" / self.run

    @property
    def backup(self) -> Path:
        return self.root / "logs" / "backup" / self.run

    @property
    def mappings(self) -> Path:
        return self.root / "mappings"

    def files(self):
        """The run's files for the run lifecycle (`kerasvq.training.lifecycle.RunFiles`)."""
        from kerasvq.training.lifecycle import RunFiles

        return RunFiles(f"run '{self.run}' of {self.version}", self.model, self.resolved_config,
                        self.history, self.tensorboard, self.backup,
                        others=(self.root / "models" / f"{self.run}.best.keras",))


def resolved_config_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.name.removesuffix(".keras") + ".config.json")


def load_trained_model(model_path: str | Path, compile: bool = False):
    """Loads a `.keras` model with the config and tokenizer it was trained with.

    Returns `(model, resolved, tokenizer)` where `resolved` is the saved resolved config
    (`resolved["config"]` is the `LMConfig` as a dict). A tokenizer whose hash differs from the
    one recorded at training time, or a model whose seq_len or vocabulary differ from the
    config, is an error.
    """
    import kerasvq.models  # noqa: F401  (registers the model classes)
    import kerasvq.training.losses  # noqa: F401
    import kerasvq.training.metrics  # noqa: F401
    from kerasvq.data.tokenizer import Tokenizer

    model_path = Path(model_path)
    if not model_path.is_file():
        raise UserError(f"{model_path}: model file not found")
    model = load_keras_model(model_path, WRITTEN_BY, compile=compile)  # a damaged file: one line
    config_path = resolved_config_path(model_path)
    resolved = load_json(config_path)
    cfg = from_dict(LMConfig, resolved["config"], str(config_path))
    # versions/<v>/models/<run>.keras → versions/<tokenizer version>/mappings/<file>
    versions_root = model_path.resolve().parent.parent.parent
    tokenizer = Tokenizer(
        versions_root / resolved["tokenizer"]["version"] / "mappings" / resolved["tokenizer"]["file"]
    )
    if tokenizer.sha256 != resolved["tokenizer"]["sha256"]:
        raise UserError(
            f"{tokenizer.model_path}: tokenizer hash {tokenizer.sha256[:12]} differs from the "
            f"{resolved['tokenizer']['sha256'][:12]} this model was trained with"
        )
    if model.seq_len != cfg.data.seq_len or model.vocab_size != cfg.data.vocab_size:
        raise UserError(
            f"{model_path}: model has seq_len {model.seq_len} / vocab {model.vocab_size} but its "
            f"config says {cfg.data.seq_len} / {cfg.data.vocab_size}"
        )
    return model, resolved, tokenizer
