"""Inference: one Model per model folder, and what it is made of (loading, inputs, the fixed-shape forward
pass, cut-outs, bulk files, export and ONNX). The CLI, the HTTP server, edit, try-on, the demo and the report
draw images through Model; the free functions stay importable for training-time sampling and benchmarks.

    import jewelgan
    model = jewelgan.load_model()                       # the shipped default, or a name / folder / run
    rings = model.generate(8, {"category": "ring"}, seed=0)
"""

from jewelgan.inference.bulk import BulkRequest, generate_bulk, read_manifest
from jewelgan.inference.catalog import DEFAULT_MODEL, SHIPPED_DIR, describe, list_models, resolve_model, shipped_models
from jewelgan.inference.errors import GenerateError, ModelNotFound
from jewelgan.inference.forward import (FORWARD_BATCH, finish_images, forward_padded, interpolate_images, mix_styles,
                                        run_generator, sample_images, synthesize, takes_truncation)
from jewelgan.inference.inputs import interpolation_inputs, latent, sample_inputs, slerp, variant_inputs
from jewelgan.inference.loading import load_generator
from jewelgan.inference.model import Model, load_model

__all__ = ["BulkRequest", "DEFAULT_MODEL", "FORWARD_BATCH", "GenerateError", "Model", "ModelNotFound", "SHIPPED_DIR",
           "describe", "finish_images", "forward_padded", "generate_bulk", "interpolate_images", "interpolation_inputs",
           "latent", "list_models", "load_generator", "load_model", "mix_styles", "read_manifest", "resolve_model",
           "run_generator", "sample_images", "sample_inputs", "shipped_models", "slerp", "synthesize",
           "takes_truncation", "variant_inputs"]
