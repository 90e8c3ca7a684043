"""Loading a trained language model with the config and tokenizer it was trained with.

It sits above training and data because it needs both: the model classes, the custom losses
and metrics a compiled model refers to, the resolved config and the version's tokenizer.

Example:
    >>> model, resolved, tokenizer = load_trained_model("versions/v5-transformer/models/v5_fixed.keras")
"""

from __future__ import annotations

from pathlib import Path

from kerasvq.config.base import from_dict, load_json
from kerasvq.config.lm import LMConfig
from kerasvq.common.errors import UserError
from kerasvq.models.model_file import load_keras_model
from kerasvq.training.run_paths import WRITTEN_BY


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
