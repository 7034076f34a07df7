"""Generators and discriminators, looked up by name through the registry.

Interface shared by every model: G(z (B, G.z_dim), labels int64 (B, A), -1 = missing) -> images
(B, 3, R, R) in [-1, 1]; D(images, labels) -> logits (B,). Builders take (config, schema).
"""

from jewelgan.models.registry import (available_models, build_model, get_builder, register_model, resolved_model_args,
                                      sees_alpha)

__all__ = ["available_models", "build_model", "get_builder", "register_model", "resolved_model_args", "sees_alpha"]
