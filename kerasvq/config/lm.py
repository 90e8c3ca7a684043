"""The language-model config: data, model and training sections, read by every stage.

The tokenizer, the windows, the model and the schedule are all built from one `LMConfig`, so
they cannot disagree on `seq_len`, vocabulary size or batch size.

Example:
    >>> cfg = load_lm_config("versions/v5-transformer/config.json", ["train.epochs=1"])
    >>> cfg.data.seq_len, cfg.train.batch_size
    (256, 32)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal, Optional

from kerasvq.config.base import load_config
from kerasvq.common.errors import UserError


@dataclasses.dataclass
class DataConfig:
    corpus: str = "default"
    """`default` (the pt-BR corpus built by `kerasvq corpus build`) or a .txt/.jsonl/.gz file or folder."""
    max_docs: Optional[int] = 50000
    val_fraction: float = 0.1
    split_seed: int = 1337
    vocab_size: int = 4000
    tokenizer_type: Literal["unigram", "bpe"] = "unigram"
    tokenizer_version: Optional[str] = None
    """Reuse the tokenizer in versions/<tokenizer_version>/mappings/ (e.g. v4 shares v5's)."""
    tokenizer_sample_sentences: int = 2_000_000
    """Tokenizer training reads at most this many training lines (a sample seeded by split_seed)."""
    seq_len: int = 256
    """Tokens the model sees at once; windows hold seq_len + 1 tokens (inputs and shifted targets)."""
    stride: int = 128

    def validate(self):
        if self.tokenizer_sample_sentences < 1000:
            raise UserError("field 'data.tokenizer_sample_sentences' must be at least 1000, got "
                            f"{self.tokenizer_sample_sentences}")
        if self.seq_len < 2:
            raise UserError(f"field 'data.seq_len' must be at least 2, got {self.seq_len}")
        if not 1 <= self.stride <= self.seq_len:
            raise UserError(
                f"field 'data.stride' must be in 1..seq_len ({self.seq_len}), got {self.stride}"
            )
        if not 0.0 < self.val_fraction < 1.0:
            raise UserError(f"field 'data.val_fraction' must be in (0, 1), got {self.val_fraction}")
        if self.vocab_size < 260:
            raise UserError(
                f"field 'data.vocab_size' must be at least 260 (256 byte pieces + specials), "
                f"got {self.vocab_size}"
            )
        if self.vocab_size > 65536:
            raise UserError(
                f"field 'data.vocab_size' must be at most 65536 (token streams are uint16), "
                f"got {self.vocab_size}"
            )
        if self.max_docs is not None and self.max_docs < 2:
            raise UserError(f"field 'data.max_docs' must be at least 2 or null, got {self.max_docs}")


@dataclasses.dataclass
class ModelConfig:
    architecture: Literal["transformer", "lstm"] = "transformer"
    d_model: int = 256
    """Transformer width; for the LSTM, the embedding size and the units of every LSTM layer."""
    num_layers: int = 4
    num_heads: int = 8
    d_ff: int = 1024
    dropout: float = 0.1
    positions: Literal["learned", "sinusoidal", "rotary"] = "learned"
    tie_embeddings: bool = True
    block: Literal["gpt", "llama"] = "gpt"
    """gpt: LayerNorm + GELU FFN; llama: RMSNorm, rotary, bias-free GQA attention, SwiGLU-family FFN."""
    ffn: Literal["dense", "moe", "moc"] = "dense"
    """llama blocks only: dense SwiGLU (width d_ff), top-k MoE, or collaborative experts (MoC)."""
    num_kv_heads: Optional[int] = None
    """llama blocks only: key/value heads for grouped-query attention (null = num_heads)."""
    num_experts: int = 8
    top_k: int = 2
    expert_d_ff: Optional[int] = None
    """SwiGLU width of each expert (null = d_ff)."""
    aux_loss: Literal["faithful", "switch"] = "faithful"
    """MoC router loss: the reference's diversity+variance loss, or Switch balance + z-loss (moe: always switch)."""
    aux_loss_weight: float = 0.01
    """Weight of the router loss; the model averages it over layers."""
    router_z_loss_weight: float = 0.001
    router_temperature: float = 1.0
    capacity_factor: Optional[float] = 1.25
    """Top-k MoE: expert capacity over a balanced load in training (null = never drop tokens)."""
    eval_capacity_factor: Optional[float] = None
    """Top-k MoE capacity outside training; null (default) never drops, so evaluation is exactly causal."""

    def validate(self):
        for name in ("d_model", "num_layers", "num_heads", "d_ff"):
            if getattr(self, name) < 1:
                raise UserError(f"field 'model.{name}' must be positive, got {getattr(self, name)}")
        if self.architecture == "transformer" and self.d_model % self.num_heads:
            raise UserError(
                f"field 'model.d_model' ({self.d_model}) must be divisible by "
                f"'model.num_heads' ({self.num_heads})"
            )
        if self.positions == "rotary" and (self.d_model // self.num_heads) % 2:
            raise UserError("field 'model.positions' rotary needs an even head size")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"field 'model.dropout' must be in [0, 1), got {self.dropout}")
        self._validate_llama()

    def _validate_llama(self):
        if self.block == "gpt":
            if self.ffn != "dense" or self.num_kv_heads is not None:
                raise UserError(
                    "fields 'model.ffn' (moe/moc) and 'model.num_kv_heads' need 'model.block' llama"
                )
            return
        if self.architecture != "transformer" or self.positions != "rotary":
            raise UserError("field 'model.block' llama needs architecture transformer and positions rotary")
        if self.num_kv_heads is not None and (
            self.num_kv_heads < 1 or self.num_heads % self.num_kv_heads
        ):
            raise UserError(
                f"field 'model.num_kv_heads' must divide num_heads ({self.num_heads}), "
                f"got {self.num_kv_heads}"
            )
        if self.ffn == "dense":
            return
        if not 1 <= self.top_k <= self.num_experts:
            raise UserError(
                f"field 'model.top_k' must be in 1..num_experts ({self.num_experts}), got {self.top_k}"
            )
        if self.expert_d_ff is not None and self.expert_d_ff < 1:
            raise UserError(f"field 'model.expert_d_ff' must be positive or null, got {self.expert_d_ff}")
        if self.aux_loss_weight < 0 or self.router_z_loss_weight < 0:
            raise UserError("fields 'model.aux_loss_weight' and 'model.router_z_loss_weight' must be ≥ 0")
        if self.router_temperature <= 0:
            raise UserError(
                f"field 'model.router_temperature' must be positive, got {self.router_temperature}"
            )
        for name in ("capacity_factor", "eval_capacity_factor"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"field 'model.{name}' must be positive or null, got {value}")

    def expert_options(self) -> dict:
        """The llama block's feed-forward settings, as `TransformerLM(expert_options=...)` takes them."""
        return {
            "num_experts": self.num_experts,
            "top_k": self.top_k,
            "expert_d_ff": self.expert_d_ff,
            "aux_loss": self.aux_loss,
            "aux_loss_weight": self.aux_loss_weight,
            "router_z_loss_weight": self.router_z_loss_weight,
            "router_temperature": self.router_temperature,
            "capacity_factor": self.capacity_factor,
            "eval_capacity_factor": self.eval_capacity_factor,
        }


@dataclasses.dataclass
class TrainConfig:
    batch_size: int = 32
    """Sequences per batch (never tokens): one batch holds batch_size × seq_len tokens."""
    epochs: int = 4
    max_steps: Optional[int] = None
    """Optional cap on total steps; when it cuts training short it is logged and recorded."""
    learning_rate: float = 1e-4
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    beta_1: float = 0.9
    beta_2: float = 0.95
    label_smoothing: float = 0.1
    clipnorm: float = 1.0
    early_stopping_patience: int = 2
    dtype_policy: Literal["float32", "mixed_bfloat16", "mixed_float16"] = "float32"
    steps_per_execution: int = 1
    seed: int = 1337
    distribution: Literal["none", "data_parallel"] = "none"
    """data_parallel: one model on several devices of this host (batch_size stays the global batch)."""
    devices: Optional[int] = None
    """data_parallel: how many devices (null = every visible accelerator, or CPU if none)."""

    def validate(self):
        if self.devices is not None and self.devices < 1:
            raise UserError(f"field 'train.devices' must be at least 1 or null, got {self.devices}")
        for name in ("batch_size", "epochs", "steps_per_execution"):
            if getattr(self, name) < 1:
                raise UserError(f"field 'train.{name}' must be at least 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UserError(f"field 'train.max_steps' must be at least 1 or null, got {self.max_steps}")
        if self.max_steps is not None and self.max_steps % self.steps_per_execution:
            # Keras hands control back only between executions, so the cap could not land on max_steps.
            raise UserError(f"field 'train.max_steps' ({self.max_steps}) must be a multiple of "
                            f"train.steps_per_execution ({self.steps_per_execution})")
        if self.learning_rate <= 0:
            raise UserError(f"field 'train.learning_rate' must be positive, got {self.learning_rate}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise UserError(
                f"field 'train.warmup_fraction' must be in [0, 1), got {self.warmup_fraction}"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise UserError(f"field 'train.min_lr_ratio' must be in [0, 1], got {self.min_lr_ratio}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UserError(
                f"field 'train.label_smoothing' must be in [0, 1), got {self.label_smoothing}"
            )
        if self.weight_decay < 0 or self.clipnorm <= 0:
            raise UserError("fields 'train.weight_decay' ≥ 0 and 'train.clipnorm' > 0 are required")


@dataclasses.dataclass
class LMConfig:
    name: str = "v5-transformer"
    """The version this config belongs to; outputs go to versions/<name>/."""
    description: str = ""
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def validate(self):
        if not self.name or "/" in self.name:
            raise UserError(f"field 'name' must be a plain folder name, got {self.name!r}")


def load_lm_config(path: str | Path, overrides: list[str] = ()) -> LMConfig:
    """Loads and validates a `LMConfig` from JSON or YAML, after `section.field=value` overrides."""
    return load_config(LMConfig, path, overrides)
