"""The built-in jewelry studio: a fast procedural renderer of fully labelled product shots.

    from jewelgan.studio import render_dataset, render_one
    render_dataset("studio64.jga", n=10_000, res=64)      # a dataset archive
    image, labels = render_one(seed=0, index=3, res=256)   # one uint8 image and its labels
"""

from jewelgan.studio.attributes import ATTRIBUTES, studio_schema
from jewelgan.studio.dataset import render_dataset, render_one

__all__ = ["ATTRIBUTES", "render_dataset", "render_one", "studio_schema"]
