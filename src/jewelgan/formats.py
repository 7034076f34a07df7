"""Reading our on-disk formats: the JSON header that tags each (archive, checkpoint, model, classifier, stage),
and safetensors weights, with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path


def read_tagged_json(path: str | Path, fmt: str, version: int, error: type[Exception] = ValueError) -> dict:
    """Load a JSON header and check its "format" tag and "version"; raise `error` naming the file.

    A newer version than this code knows is refused rather than half-read.
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise error(f"{path}: unreadable JSON ({e})") from None
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        found = obj.get("format") if isinstance(obj, dict) else None
        raise error(f"{path}: not a {fmt} (format={found!r})")
    if int(obj.get("version", 0)) > version:
        raise error(f"{path}: format version {obj['version']} is newer than this jewelgan reads ({version})")
    return obj


def read_safetensors(path: str | Path, error: type[Exception] = ValueError) -> dict:
    """Tensors of a safetensors file (never a pickle); a missing or damaged file raises `error` naming it."""
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: missing")
    try:
        return load(path.read_bytes())
    except Exception as e:  # safetensors raises its own error type for any damage
        raise error(f"{path}: unreadable safetensors ({str(e).splitlines()[0]})") from None
