"""jewelgan: GANs for jewelry product images."""

__version__ = "0.1.0"
