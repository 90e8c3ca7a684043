"""The hierarchical VQ-VAE config: feature data and category mapping, per-family encoders,
the levels of tokens, and training. Loaded from YAML (`.yaml`/`.yml`) or JSON.

Example:
    >>> cfg = load_hvqvae_config("versions/hvqvae-demo/config.yaml", ["train.epochs=2"])
    >>> [level.codebook_size for level in cfg.model.levels]
    [128, 256, 512]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from kerasvq.config.base import from_dict, load_config
from kerasvq.common.errors import UserError
from kerasvq.common.paths import version_dir

# Where `kerasvq features` writes the aggregated table inside an HDF5 file (the config's default).
DEFAULT_FEATURES_DATASET = "/features/sdf/aggregated/features"


@dataclasses.dataclass
class HVQDataConfig:
    features: str = "~/.cache/kerasvq/features/hvqvae-demo.h5"
    """HDF5 file holding the samples × features matrix and its feature registry."""
    dataset: str = DEFAULT_FEATURES_DATASET
    category_mapping: Literal["registry", "auto", "file", "checkpoint"] = "registry"
    """registry: the file's registry categories; auto: columns clustered by correlation into
    `num_groups`; file: `category_mapping_file` (from `kerasvq features discover`);
    checkpoint: the mapping saved in `train.checkpoint_dir` by an earlier run."""
    category_mapping_file: str | None = None
    num_groups: int = 6

    def validate(self):
        if self.category_mapping == "file" and not self.category_mapping_file:
            raise UserError("field 'data.category_mapping' is 'file' but 'data.category_mapping_file' is not set")
        if self.num_groups < 1:
            raise UserError(f"field 'data.num_groups' must be at least 1, got {self.num_groups}")


@dataclasses.dataclass
class EncoderConfig:
    hidden_dims: list[int] = dataclasses.field(default_factory=lambda: [128])
    output_dim: int = 64
    dropout: float = 0.0
    activation: str = "gelu"
    batch_norm: bool = False

    def validate(self):
        if any(w < 1 for w in self.hidden_dims) or self.output_dim < 1:
            raise UserError(f"hidden_dims and output_dim must be positive, got {self.hidden_dims}, {self.output_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"field 'dropout' must be in [0, 1), got {self.dropout}")


@dataclasses.dataclass
class FamiliesConfig:
    default: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    overrides: dict[str, dict] = dataclasses.field(default_factory=dict)
    """{family (category) name: {encoder field: value}}, replacing `default` for that family."""

    def validate(self):
        for name, override in self.overrides.items():
            if not isinstance(override, dict):
                raise UserError(f"field 'families.overrides.{name}' must be an object")
            merged = {**dataclasses.asdict(self.default), **override}
            from_dict(EncoderConfig, merged, f"family '{name}'", prefix=f"families.overrides.{name}.")


@dataclasses.dataclass
class LevelConfig:
    name: str = "coarse"
    dim: int = 32
    codebook_size: int = 128

    def validate(self):
        if self.dim < 1 or not 2 <= self.codebook_size <= 65536:
            raise UserError(f"level '{self.name}': dim must be ≥ 1 and codebook_size in 2..65536")


def _default_levels():
    return [LevelConfig("coarse", 32, 128), LevelConfig("medium", 16, 256), LevelConfig("fine", 8, 512)]


@dataclasses.dataclass
class HVQModelConfig:
    levels: list[LevelConfig] = dataclasses.field(default_factory=_default_levels)
    commitment_cost: float = 0.45
    ema_decay: float = 0.99
    orthogonality_weight: float = 0.1
    informativeness_weight: float = 0.5

    def validate(self):
        if not self.levels:
            raise UserError("field 'model.levels' must list at least one level")
        names = [level.name for level in self.levels]
        if len(set(names)) != len(names):
            raise UserError(f"field 'model.levels': level names must differ, got {names}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise UserError(f"field 'model.ema_decay' must be in [0, 1), got {self.ema_decay}")
        for name in ("commitment_cost", "orthogonality_weight", "informativeness_weight"):
            if getattr(self, name) < 0:
                raise UserError(f"field 'model.{name}' must be ≥ 0, got {getattr(self, name)}")

    def oversized_levels(self, train_rows: int) -> list[str]:
        """One line per level with more codes than training rows: such a codebook cannot be
        filled (each row picks one code per category), so its usage is capped at
        rows / codes and the run reports collapse that is only the sizing."""
        return [f"level '{level.name}' has {level.codebook_size} codes but the training split has only "
                f"{train_rows} rows, so at most {train_rows / level.codebook_size:.0%} of its codes can be "
                f"used; size codebooks to the data (model.levels[{i}].codebook_size ≤ {train_rows})"
                for i, level in enumerate(self.levels) if level.codebook_size > train_rows]


@dataclasses.dataclass
class HVQTrainConfig:
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    checkpoint_dir: str | None = None
    """Where the resumable state (weights, epoch, mapping, normalization) goes; default
    versions/<name>/checkpoints."""
    seed: int = 1337
    test_fraction: float = 0.2
    kmeans_init: bool = True
    kmeans_sample: int = 4096
    reset_every: int = 25
    """Steps between dead-code checks (CodebookReset); 0 turns it off."""
    reset_max_unused_steps: int = 50
    reset_min_usage: float = 0.03

    def validate(self):
        for name in ("epochs", "batch_size", "kmeans_sample"):
            if getattr(self, name) < 1:
                raise UserError(f"field 'train.{name}' must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise UserError(f"field 'train.learning_rate' must be positive, got {self.learning_rate}")
        if not 0.0 < self.test_fraction < 1.0:
            raise UserError(f"field 'train.test_fraction' must be in (0, 1), got {self.test_fraction}")
        if self.reset_every < 0:
            raise UserError(f"field 'train.reset_every' must be ≥ 0, got {self.reset_every}")


@dataclasses.dataclass
class HVQVAEConfig:
    name: str = "hvqvae-demo"
    description: str = ""
    data: HVQDataConfig = dataclasses.field(default_factory=HVQDataConfig)
    families: FamiliesConfig = dataclasses.field(default_factory=FamiliesConfig)
    model: HVQModelConfig = dataclasses.field(default_factory=HVQModelConfig)
    train: HVQTrainConfig = dataclasses.field(default_factory=HVQTrainConfig)

    def validate(self):
        if not self.name or "/" in self.name:
            raise UserError(f"field 'name' must be a plain folder name, got {self.name!r}")

    @property
    def checkpoint_dir(self) -> Path:
        if self.train.checkpoint_dir:
            return Path(self.train.checkpoint_dir).expanduser()
        return version_dir(self.name) / "checkpoints"

    def model_kwargs(self) -> dict:
        """Keyword arguments of `HierarchicalVQVAE` besides groups and num_features."""
        m = self.model
        return dict(
            levels=[dataclasses.asdict(level) for level in m.levels],
            encoder=dataclasses.asdict(self.families.default),
            encoder_overrides=self.families.overrides,
            commitment_cost=m.commitment_cost, decay=m.ema_decay,
            orthogonality_weight=m.orthogonality_weight, informativeness_weight=m.informativeness_weight,
        )


def load_hvqvae_config(path: str | Path, overrides: list[str] = ()) -> HVQVAEConfig:
    """Loads and validates a `HVQVAEConfig` from JSON or YAML, after `section.field=value` overrides."""
    return load_config(HVQVAEConfig, path, overrides)
