"""Drawn images -> larger images through the model folder's upsampling stages (the cascade's second half).

Each stage runs in fixed-shape batches like the generator (forward.forward_padded), so an image's bytes at 512 px
depend on its seed alone too, and the image is rounded to uint8 between stages: upsampling a saved 256 px image
gives the same bytes as the cascade's own 256 -> 512 step. A stage's pass holds a fixed number of output
pixels, the generator's batch at 256 px (stage_rows): at 512 px a pass of 4 images runs as many images per
second as one of 16 on 2 cores, and one image is drawn in a quarter of the time and memory.
"""

from __future__ import annotations

import numpy as np
import torch

from jewelgan.data.labels import LabelSchema
from jewelgan.inference.errors import GenerateError
from jewelgan.upsample.stage import Stage, chain, map_labels, sizes


def plan(base: int, stages: list[Stage], size: int | None) -> list[Stage]:
    """The stages that lead to `size` (none for the base size); a size no chain reaches is refused by name."""
    if size is None or size == base:
        return []
    path = chain(base, stages, size)
    if path is None:
        raise GenerateError(f"size {size}: this model draws {', '.join(map(str, sizes(base, stages)))} px "
                            "(train an upsampling stage with `jewelgan train-upsampler`, or pass resize to resample)")
    return path


def stage_rows(batch: int, size_out: int) -> int:
    """Images per pass of a stage drawing size_out px, for the generator's fixed batch: as many pixels as
    `batch` images at 256 px (16 -> 16 at 256 px, 4 at 512 px)."""
    return max(1, batch * 256 * 256 // (size_out * size_out))


@torch.no_grad()
def upsample(path: list[Stage], raw: np.ndarray, labels: torch.Tensor, schema: LabelSchema, batch: int) -> np.ndarray:
    """uint8 (n, R, R, C) -> uint8 (n, R', R', C) through each stage of the path in turn."""
    from jewelgan.upsample.pairs import to_tensor
    from jewelgan.upsample.quality import to_uint8

    for stage in path:
        lab = map_labels(labels, schema, stage.schema)
        rows = stage_rows(batch, stage.size_out)
        out = []
        for i in range(0, len(raw), rows):
            x, lb = to_tensor(raw[i:i + rows]), lab[i:i + rows]
            real = len(x)
            if real < rows:  # padded to the fixed shape, as the generator's passes are
                x = torch.cat([x, x[-1:].expand(rows - real, *x.shape[1:])])
                lb = torch.cat([lb, lb[-1:].expand(rows - real, -1)])
            out.append(to_uint8(stage.net(x.contiguous(memory_format=torch.channels_last), lb)[:real]))
        raw = np.concatenate(out) if out else np.zeros((0, stage.size_out, stage.size_out, raw.shape[-1]), np.uint8)
    return raw


def resample_to(raw: np.ndarray, size: int) -> np.ndarray:
    """An explicit resize (Lanczos, per channel) to a size no stage reaches; callers say that they resampled."""
    from jewelgan.upsample.quality import resample

    return resample(raw, size, "lanczos")
