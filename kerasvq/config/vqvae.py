"""The VQ-VAE config: embedding data, model shape and anti-collapse training.

Example:
    >>> cfg = load_vqvae_config("versions/vqvae-wiki/config.json", ["train.epochs=2"])
    >>> cfg.model.num_heads, cfg.model.codebook_size
    (4, 256)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal, Optional

from kerasvq.config.base import load_config
from kerasvq.common.errors import UserError


@dataclasses.dataclass
class VQDataConfig:
    embeddings: str = "~/.cache/kerasvq/embeddings/debian-en-minilm.h5"
    """An .h5/.hdf5 (dataset `dataset`) or .npy file of (rows, input_dim) vectors."""
    dataset: str = "embeddings"
    test_fraction: float = 0.21
    split_seed: int = 1337

    def validate(self):
        if not 0.0 < self.test_fraction < 1.0:
            raise UserError(f"field 'data.test_fraction' must be in (0, 1), got {self.test_fraction}")


@dataclasses.dataclass
class VQModelConfig:
    input_dim: int = 384
    hidden_dim: int = 1024
    latent_dim: int = 512
    num_heads: int = 4
    codebook_size: int = 256
    dropout: float = 0.1
    decay: float = 0.99
    commitment_cost: float = 1.0
    cosine_codebooks: bool = False
    gradient: Literal["straight_through", "rotation"] = "straight_through"
    orthogonal_weight: float = 0.0
    entropy_weight: float = 0.0
    reconstruction_loss: Literal["relative", "variance", "cosine"] = "relative"
    linear_skip: bool = True
    residual: bool = False
    beam_size: int = 1
    """residual: codes by beam search keeping this many partial reconstructions (1 = greedy)."""
    conditioning_dim: int = 0
    """residual: hidden width of the QINCo-style codeword corrections f_h(code, partial reconstruction); 0 = off."""
    conditioning_candidates: int = 16
    """residual with conditioning: base-nearest codes per beam re-scored with their conditioned codewords."""
    ranking_weight: float = 0.0
    """Weight of the listwise neighbour-ranking loss (decoded batch ranked as the inputs)."""
    ranking_temperature: float = 0.05

    def validate(self):
        for name in ("input_dim", "hidden_dim", "latent_dim", "num_heads"):
            if getattr(self, name) < 1:
                raise UserError(f"field 'model.{name}' must be positive, got {getattr(self, name)}")
        if not 2 <= self.codebook_size <= 65536:
            raise UserError(f"field 'model.codebook_size' must be in 2..65536, got {self.codebook_size}")
        if not self.residual and self.latent_dim % self.num_heads:
            raise UserError(
                f"field 'model.latent_dim' ({self.latent_dim}) must be divisible by 'model.num_heads' ({self.num_heads})"
            )
        if not 0.0 <= self.decay < 1.0:
            raise UserError(f"field 'model.decay' must be in [0, 1), got {self.decay}")
        if self.residual and self.cosine_codebooks:
            raise UserError("fields 'model.residual' and 'model.cosine_codebooks' cannot both be true")
        if self.beam_size < 1 or self.conditioning_candidates < 1 or self.conditioning_dim < 0:
            raise UserError("fields 'model.beam_size' and 'model.conditioning_candidates' must be ≥ 1, "
                            "'model.conditioning_dim' ≥ 0")
        if not self.residual and (self.beam_size > 1 or self.conditioning_dim):
            raise UserError("fields 'model.beam_size' > 1 and 'model.conditioning_dim' need 'model.residual' true")
        if self.ranking_weight < 0 or self.ranking_temperature <= 0:
            raise UserError("field 'model.ranking_weight' must be ≥ 0 and 'model.ranking_temperature' positive")


@dataclasses.dataclass
class VQTrainConfig:
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 3e-4
    clipnorm: float = 1.0
    kmeans_init: bool = True
    pca_init: bool = True
    """Start the linear paths (model.linear_skip) as a variance-balanced PCA rotation."""
    kmeans_sample: int = 8192
    codebook_init: Literal["kmeans", "faiss_rq"] = "kmeans"
    """faiss_rq (model.residual): codebooks from FAISS ResidualQuantizer's centroids of the latents."""
    rq_beam: int = 32
    """max_beam_size of that FAISS ResidualQuantizer."""
    reset_every: int = 50
    """Steps between dead-code checks; 0 turns CodebookReset off."""
    reset_max_unused_steps: int = 100
    reset_min_usage: float = 0.03
    log_sample: int = 2000
    seed: int = 1337
    distribution: Literal["none", "data_parallel"] = "none"
    """data_parallel: one model on several devices of this host (batch_size stays the global batch)."""
    devices: Optional[int] = None
    """data_parallel: how many devices (null = every visible accelerator, or CPU if none)."""

    def validate(self):
        if self.devices is not None and self.devices < 1:
            raise UserError(f"field 'train.devices' must be at least 1 or null, got {self.devices}")
        for name in ("epochs", "batch_size", "kmeans_sample"):
            if getattr(self, name) < 1:
                raise UserError(f"field 'train.{name}' must be at least 1, got {getattr(self, name)}")
        if self.log_sample < 11:  # each epoch's recall@10 needs a query and 10 other rows
            raise UserError(f"field 'train.log_sample' must be at least 11 (recall@10 needs a query "
                            f"and 10 neighbours), got {self.log_sample}")
        if self.learning_rate <= 0 or self.clipnorm <= 0:
            raise UserError("fields 'train.learning_rate' and 'train.clipnorm' must be positive")
        if self.reset_every < 0:
            raise UserError(f"field 'train.reset_every' must be ≥ 0, got {self.reset_every}")


@dataclasses.dataclass
class VQVAEConfig:
    name: str = "vqvae-wiki"
    description: str = ""
    data: VQDataConfig = dataclasses.field(default_factory=VQDataConfig)
    model: VQModelConfig = dataclasses.field(default_factory=VQModelConfig)
    train: VQTrainConfig = dataclasses.field(default_factory=VQTrainConfig)

    def validate(self):
        if not self.name or "/" in self.name:
            raise UserError(f"field 'name' must be a plain folder name, got {self.name!r}")
        if self.train.codebook_init == "faiss_rq" and not self.model.residual:
            raise UserError("field 'train.codebook_init' 'faiss_rq' needs 'model.residual' to be true")
        if self.train.pca_init and not self.model.linear_skip:
            raise UserError("field 'train.pca_init' needs 'model.linear_skip' to be true")


def load_vqvae_config(path: str | Path, overrides: list[str] = ()) -> VQVAEConfig:
    """Loads and validates a `VQVAEConfig` from JSON or YAML, after `section.field=value` overrides."""
    return load_config(VQVAEConfig, path, overrides)
