"""ONNX export of a trained generator, for serving from any language with onnxruntime.

The graph takes
    z           float32 (N, z_dim)   latents, normal(0, 1) (jewelgan draws image i's from seed + i)
    labels      int64   (N, A)       one value index per attribute (model.json's schema order), -1 = any
    truncation  float32 (1,)         psi in [0, 1], style models only; 1 = off
and returns
    images      uint8   (N, R, R, C) NHWC: RGB as seen on the backdrop, plus alpha when C = 4.

Truncation lerps each w toward its condition's mean w, the mean of the mapping over fixed latents. torch
averages 1024 (StyleGenerator.mean_w_latents); the graph computes the mean for every row it draws, so it
averages the first TRUNCATION_LATENTS of the same latents: 1024 would cost more than the synthesis itself
(benchmarks/generate_throughput.py). At psi = 1 the graph equals torch within 1/255 (tests/test_shipped_model.py
allows 2); below 1 images differ by that sampling of the mean: at psi = 0.7, 0.4 levels on average, up to
~30 on a few edge pixels. A cascade graph (`generator-256.onnx`, `generator-512.onnx`: the generator and the model folder's upsampling
stages in one graph) takes the same inputs and returns (N, S, S, C) at its size. Cut-outs (alpha with the
backdrop's share taken out) are a per-pixel
post-step, jewelgan.inference.cutout.to_cutout, left outside the graph. Models without truncation in G (mlp,
dcgan) take no truncation input: their callers truncate z.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

OPSET = 17
TRUNCATION_LATENTS = 128


class _StyleGraph(nn.Module):
    def __init__(self, G: nn.Module, mean_samples: int):
        super().__init__()
        self.G = G
        self.register_buffer("latents", G.mean_w_latents()[:mean_samples].clone())

    def forward(self, z: torch.Tensor, labels: torch.Tensor, truncation: torch.Tensor) -> torch.Tensor:
        G = self.G
        w = G.mapping(z, labels)
        n = self.latents.shape[0]
        rows = labels.repeat_interleave(n, dim=0)
        w_mean = G.mapping(self.latents.repeat(z.shape[0], 1), rows).view(z.shape[0], n, -1).mean(dim=1)
        w = w_mean + truncation * (w - w_mean)
        x = G.synthesis(w.unsqueeze(1).repeat(1, G.num_ws, 1), G.eval_noise)
        return _to_uint8(x)


class _PlainGraph(nn.Module):
    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return _to_uint8(self.G(z, labels))


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    # jewelgan.grid.to_uint8, in graph form
    return x.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1)


class _CascadeGraph(nn.Module):
    """The generator's graph, then each upsampling stage on its uint8 output (rounded between stages, as
    inference/cascade.py does), with the labels mapped into each stage's schema by lookup tables."""

    def __init__(self, base: nn.Module, stages: list, tables: list[list[tuple[int, torch.Tensor]]]):
        super().__init__()
        self.base, self.nets = base, nn.ModuleList(s.net for s in stages)
        self.columns = [[i for i, _ in t] for t in tables]
        for k, t in enumerate(tables):
            for j, (_, table) in enumerate(t):
                self.register_buffer(f"table_{k}_{j}", table)

    def forward(self, z: torch.Tensor, labels: torch.Tensor, *truncation: torch.Tensor) -> torch.Tensor:
        img = self.base(z, labels, *truncation)
        for k, net in enumerate(self.nets):
            mapped = []
            for j, i in enumerate(self.columns[k]):
                table = getattr(self, f"table_{k}_{j}")
                if i < 0:
                    mapped.append(torch.full_like(labels[:, 0], -1))
                else:
                    col = labels[:, i]
                    mapped.append(table[torch.where(col < 0, torch.full_like(col, table.shape[0] - 1), col)])
            lab = torch.stack(mapped, dim=1) if mapped else None
            x = img.permute(0, 3, 1, 2).float().div(127.5).sub(1)
            img = _to_uint8(net(x, lab))
        return img


def _label_tables(base_schema, stage_schema) -> list[tuple[int, torch.Tensor]]:
    """Per stage attribute: (base column or -1, base value index -> stage value index, with a last row for -1)."""
    out = []
    for name in stage_schema.names:
        if name not in base_schema.attributes:
            out.append((-1, torch.zeros(1, dtype=torch.long)))
            continue
        values = list(stage_schema.attributes[name])
        table = [values.index(v) if v in values else -1 for v in base_schema.attributes[name]] + [-1]
        out.append((base_schema.names.index(name), torch.tensor(table, dtype=torch.long)))
    return out


def export_onnx(G: nn.Module, n_attributes: int, out: str | Path, truncation_latents: int = TRUNCATION_LATENTS,
                stages: list | None = None, schema=None) -> Path:
    """Write G (eval mode, CPU, fp32) as an ONNX graph at `out`; returns the path. With stages (a chain from
    upsample/stage.py, and the model's label schema), the graph is the whole cascade to the last stage's size."""
    out = Path(out)
    G = G.float().cpu().eval()
    style = hasattr(G, "mean_w_latents")
    # the wrapper must be in eval mode too: export restores the wrapper's mode onto every submodule afterwards
    graph = (_StyleGraph(G, truncation_latents) if style else _PlainGraph(G)).eval()
    if stages:
        graph = _CascadeGraph(graph, stages, [_label_tables(schema, s.schema) for s in stages]).eval()
    z = torch.randn(2, G.z_dim)
    labels = torch.zeros(2, n_attributes, dtype=torch.long)
    args = (z, labels, torch.ones(1)) if style else (z, labels)
    names = ["z", "labels", "truncation"] if style else ["z", "labels"]
    tmp = out.with_name(out.name + ".partial")
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer warns about every shape check in forward(); the shapes it fixes are the model's own
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, args, str(tmp), input_names=names, output_names=["images"], opset_version=OPSET,
                          dynamic_axes={"z": {0: "n"}, "labels": {0: "n"}, "images": {0: "n"}}, dynamo=False)
    tmp.replace(out)
    return out


def export_cascades(model, folder: str | Path) -> list[Path]:
    """generator-<size>.onnx in a model folder for every size its stages reach (a loaded Model of that folder)."""
    from jewelgan.upsample.stage import chain

    written = []
    for size in model.sizes:
        if size != model.resolution:
            path = chain(model.resolution, model.stages, size)
            written.append(export_onnx(model.G, len(model.schema), Path(folder) / f"generator-{size}.onnx",
                                       stages=path, schema=model.schema))
    return written
