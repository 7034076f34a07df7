"""Model registry: a name (the --model flag) -> a builder(config, schema) returning (G, D).

Built-in models register themselves with @register_model when their module is imported; the registry
imports those modules on the first lookup, so `import jewelgan.models` stays cheap and a new built-in
model is one decorated builder plus its module's name in BUILTIN_MODULES.

A builder may accept a keyword `discriminator=False` to skip building D (loading a generator for
sampling then never constructs a large or pretrained discriminator); otherwise D is built and dropped.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Callable

from torch import nn

Builder = Callable[..., tuple[nn.Module, nn.Module | None]]

_BUILDERS: dict[str, Builder] = {}
# modules whose builders register themselves when imported
BUILTIN_MODULES = ("jewelgan.models.mlp", "jewelgan.models.dcgan", "jewelgan.models.style")


class UnknownModelError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want a plain sentence
        return str(self.args[0])


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator: @register_model("dcgan") def build(config, schema): return G, D."""

    def deco(builder: Builder) -> Builder:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"model {name!r} is already registered by {_BUILDERS[name].__module__}")
        _BUILDERS[name] = builder
        return builder

    return deco


def _import_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def available_models() -> list[str]:
    _import_builtins()
    return sorted(_BUILDERS)


def get_builder(name: str) -> Builder:
    if name not in _BUILDERS:
        _import_builtins()
    if name not in _BUILDERS:
        raise UnknownModelError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return _BUILDERS[name]


def resolved_model_args(name: str, config) -> dict:
    """config.model_args with every preset value written out (for builders that read presets).

    A run stores these, not the preset's name, so that it rebuilds the same network after a preset
    changes. Builders opt in with a `resolve_args(config) -> dict` attribute.
    """
    resolve = getattr(get_builder(name), "resolve_args", None)
    return resolve(config) if resolve is not None else dict(config.model_args)


def sees_alpha(name: str, config) -> bool:
    """Whether this model's configuration can learn an alpha channel (its D can judge 4 channels).
    Builders that cannot always do declare a `sees_alpha(config) -> bool` attribute."""
    check = getattr(get_builder(name), "sees_alpha", None)
    return bool(check(config)) if check is not None else True


def build_model(name: str, config, schema, *, discriminator: bool = True) -> tuple[nn.Module, nn.Module | None]:
    """Build (G, D) for a registered model; D is None when discriminator=False and the builder can skip it."""
    builder = get_builder(name)
    if not discriminator and "discriminator" in inspect.signature(builder).parameters:
        G, D = builder(config, schema, discriminator=False)
    else:
        G, D = builder(config, schema)
        if not discriminator:
            D = None
    for part, m in (("generator", G), ("discriminator", D)):
        if m is not None and not isinstance(m, nn.Module):
            raise TypeError(f"model {name!r}: builder returned a {type(m).__name__} as {part}, expected nn.Module")
    if not hasattr(G, "z_dim"):
        raise TypeError(f"model {name!r}: the generator must expose z_dim")
    return G, D
