"""jewelgan: GANs for jewelry product images."""

__version__ = "0.1.0"


def load_model(name_or_path=None, device: str = "cpu", compile: bool = False):
    """The shipped default model (no argument), a shipped model by name, or a model/run folder; see
    jewelgan.inference. Imported lazily so `import jewelgan` stays cheap."""
    from jewelgan.inference import load_model as load

    return load(name_or_path, device, compile)
