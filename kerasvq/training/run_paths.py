"""Where a training run's artifacts live (loading them back: `kerasvq.evaluation.trained_model`).

A run `<run>` of version `<v>` writes:
    versions/<v>/models/<run>.keras            the model (best validation loss)
    versions/<v>/models/<run>.config.json      the resolved config it was trained with
    versions/<v>/logs/train_<run>.json         per-epoch history, status, data sizes
    versions/<v>/logs/tensorboard/<run>/       TensorBoard scalars (train/ and validation/)
    versions/<v>/logs/backup/<run>/            checkpoint generations while unfinished
    versions/<v>/mappings/                     the version's tokenizer

Example:
    >>> RunPaths("v5-transformer", "v5_fixed").model.name
    'v5_fixed.keras'
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kerasvq.common.paths import version_dir
from kerasvq.training.lifecycle import RunFiles

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
        return RunFiles(f"run '{self.run}' of {self.version}", self.model, self.resolved_config,
                        self.history, self.tensorboard, self.backup,
                        others=(self.root / "models" / f"{self.run}.best.keras",))
