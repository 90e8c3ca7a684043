"""Typed, validated dataclass configs loaded from JSON, with `a.b=value` overrides.

Every family of runs (language models, VQ-VAEs, ...) declares its config as a tree of
dataclasses and uses these helpers, so every config file gets the same checks: unknown keys,
wrong types, NaN/inf numbers and invalid values are one-line `UserError`s naming the file and
the field.

Example:
    >>> @dataclasses.dataclass
    ... class Train:
    ...     epochs: int = 4
    >>> from_dict(Train, {"epochs": "4"}, "cfg.json")
    Traceback (most recent call last):
    kerasvq.common.errors.UserError: cfg.json: field 'epochs' must be int, got str '4'
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from kerasvq.common.temp_files import temp_prefix
from kerasvq.common.errors import UserError


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp)
        return f"list[{_type_name(item)}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(tp, value, field: str, where: str):
    """Checks `value` against the annotation `tp`; returns it (nested dataclasses built)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"{where}: field '{field}' must be an object, got {type(value).__name__}")
        return from_dict(tp, value, where, prefix=f"{field}.")
    if origin in (Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _convert(option, value, field, where)
            except UserError:
                continue
        raise UserError(f"{where}: field '{field}' must be {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise UserError(f"{where}: field '{field}' must be one of {_type_name(tp)}, got {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise UserError(f"{where}: field '{field}' must be a list, got {type(value).__name__}")
        return [_convert(item, v, f"{field}[{i}]", where) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: field '{field}' must be an object, got {type(value).__name__}")
        return value
    if tp is type(None):
        if value is None:
            return None
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # JSON's NaN/Infinity, YAML's .nan/.inf
                raise UserError(f"{where}: field '{field}' must be a finite number, got {value!r}")
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is Any:
        return value
    elif isinstance(value, tp):
        return value
    raise UserError(
        f"{where}: field '{field}' must be {_type_name(tp)}, got {type(value).__name__} {value!r}"
    )


def from_dict(cls, data: dict, where: str = "config", prefix: str = ""):
    """Builds dataclass `cls` from `data`, rejecting unknown keys and wrong types.

    `where` names the source (usually the file path) in error messages. Fields missing from
    `data` take their defaults. After building, `validate()` is called if the class has one.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(
            f"{where}: unknown field '{prefix}{unknown[0]}' (known: {', '.join(sorted(names))})"
        )
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], prefix + f.name, where)
    obj = cls(**kwargs)
    if hasattr(obj, "validate"):
        try:
            obj.validate()
        except UserError as e:
            raise UserError(f"{where}: {e}") from None
    return obj


def to_dict(obj) -> dict:
    """The dataclass tree as plain JSON-ready dicts."""
    return dataclasses.asdict(obj)


def apply_overrides(data: dict, overrides: list[str], where: str = "--set") -> dict:
    """Returns a copy of `data` with `section.field=value` overrides applied.

    Values are parsed as JSON when they can be (`3`, `1e-3`, `true`, `null`, `[1,2]`) and
    taken as strings otherwise (`model.positions=rotary`).

    Example:
        >>> apply_overrides({"train": {"epochs": 4}}, ["train.epochs=1"])
        {'train': {'epochs': 1}}
    """
    result = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise UserError(f"{where} {item!r}: expected section.field=value")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"{where} {item!r}: '{part}' is not a section")
        node[parts[-1]] = value
    return result


def _read_object(path, kind: str, parse, errors) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; expected a {kind} config")
    try:
        data = parse(path.read_text(encoding="utf-8"))
    except (*errors, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid {kind} ({' '.join(str(e).split())})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a {kind} object at the top level")
    return data


def load_json(path: str | os.PathLike) -> dict:
    """Reads a JSON object from `path`, with one-line errors for missing or invalid files."""
    return _read_object(path, "JSON", json.loads, (json.JSONDecodeError,))


def load_config_file(path: str | os.PathLike) -> dict:
    """Reads a config object from a `.yaml`/`.yml` (YAML) or any other (JSON) file."""
    if Path(path).suffix.lower() not in (".yaml", ".yml"):
        return load_json(path)
    import yaml

    return _read_object(path, "YAML", yaml.safe_load, (yaml.YAMLError,))


def load_config(cls, path: str | os.PathLike, overrides=()):
    """A validated `cls` config from a JSON or YAML file, after `section.field=value` overrides."""
    overrides = list(overrides)
    data = apply_overrides(load_config_file(path), overrides)
    # A bad value may come from the command line rather than the file: name both.
    where = str(path) + (f" with --set {' '.join(overrides)}" if overrides else "")
    return from_dict(cls, data, where)


def strict_json(value):
    """`value` with NaN and infinities replaced by None, so strict JSON parsers accept it.

    NumPy scalars become Python numbers (NumPy registers them as `numbers.Real`/`Integral`).

    Example:
        >>> strict_json({"losses": [2.5, float("inf")], "steps_run": 2})
        {'losses': [2.5, None], 'steps_run': 2}
    """
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    return value


def save_json(path: str | os.PathLike, data: Any) -> Path:
    """Writes strict JSON (`strict_json`: NaN/inf as null) atomically, through a temporary file
    and a rename, so a crash never leaves half a file; a failed write removes its temporary,
    and one a kill leaves behind names its process (`kerasvq.common.temp_files`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(strict_json(data), f, indent=2, ensure_ascii=False, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
