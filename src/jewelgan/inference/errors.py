"""The errors of the inference layer: a request or a model path it cannot serve."""


class GenerateError(Exception):
    """Bad generation request (unknown path, attribute or value, size, or a clashing output folder)."""


class ModelNotFound(ValueError):
    """A model name or path that names no model folder."""
