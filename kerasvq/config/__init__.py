"""Config trees for every kind of run, and the helpers that load and check them."""

from kerasvq.config.base import apply_overrides, from_dict, load_json, save_json, to_dict

__all__ = ["apply_overrides", "from_dict", "load_json", "save_json", "to_dict"]
