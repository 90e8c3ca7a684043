"""Model keys → saved runs, so analysis scripts name models the way the thesis does.

The registry is a JSON file (`analysis/model_registry.json`):
    {"schema_version": 1,
     "models": {"v5_brwac_transformer_fixed": {"path": "versions/v5-transformer/models/main.keras",
                                               "label": "v5 fixed", "description": "..."}}}
Paths are relative to the project root (`$KERASVQ_HOME`, default the current folder). A
`.keras` path may be given instead of a key; its key is then the file name.

Example:
    >>> key, path, entry = resolve_model("v5_brwac_transformer_fixed", "analysis/model_registry.json")
"""

from __future__ import annotations

import os
from pathlib import Path

from kerasvq.config.base import load_json
from kerasvq.common.errors import UserError


def load_registry(path: str | Path) -> dict:
    data = load_json(path)
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict) or not all(isinstance(v, dict) and isinstance(v.get("path"), str) for v in models.values()):
        raise UserError(f"{path}: expected {{\"models\": {{key: {{\"path\": \"versions/...keras\"}}}}}}")
    return models


def resolve_model(key_or_path: str, registry_path: str | Path) -> tuple[str, Path, dict]:
    """(key, model path, registry entry) for a registry key or a `.keras` path."""
    if key_or_path.endswith(".keras"):
        path = Path(key_or_path)
        return path.name.removesuffix(".keras"), path, {"path": key_or_path, "label": path.stem}
    models = load_registry(registry_path)
    if key_or_path not in models:
        raise UserError(
            f"{registry_path}: unknown model key {key_or_path!r}; known keys: {', '.join(sorted(models))}"
        )
    entry = dict(models[key_or_path])
    entry.setdefault("label", key_or_path)
    return key_or_path, Path(os.environ.get("KERASVQ_HOME", ".")) / entry["path"], entry
