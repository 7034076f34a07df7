"""Attribute classifier: does "metal=rose_gold" really give rose gold?

A small CNN with one softmax head per attribute, trained on the labelled archive (missing labels are
ignored per head) with a seeded held-out split whose accuracy is reported next to every score: a
generated-image accuracy can only be read against how well the classifier does on real images.
Saved as classifier.safetensors + classifier.json (schema, resolution, held-out accuracy).

The classifier reads generated images, which never match the reals pixel for pixel. Trained on clean
renders only, it learnt cues so fine that real images read at chance after 3 % pixel noise or a
15 % darker exposure (metal 0.27 and 0.25, category 0.40; `benchmarks/classifier_robustness.py`):
it scored how photo-exact a fake is, not which metal it shows. So training also degrades the
images the way generated ones differ (blur through a smaller resolution, pixel noise, a mild
exposure change) while keeping what the labels are about (hue, saturation, shape), and the held-out
accuracy is reported on degraded reals too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from jewelgan.data.archive import Archive
from jewelgan.data.labels import LabelSchema
from jewelgan.formats import read_tagged_json

FORMAT = "jewelgan-attribute-classifier"
WEIGHTS = "classifier.safetensors"
CONFIG = "classifier.json"


class AttributeClassifier(nn.Module):
    """Four stages (stride-2 conv, then a 3x3 conv), global average pooling, one linear head per
    attribute. Downsampling first keeps it cheap enough to train in seconds on a CPU."""

    def __init__(self, num_values: list[int], resolution: int = 64, width: int = 32):
        super().__init__()
        self.resolution = resolution
        chans = [3, width, width * 2, width * 4, width * 4]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                       nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.trunk = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        self.heads = nn.ModuleList(nn.Linear(chans[-1], k) for k in num_values)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.dropout(self.trunk(x).mean(dim=(2, 3)))
        return [head(h) for head in self.heads]


def to_input(images: np.ndarray, resolution: int, device="cpu") -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1] at the classifier's resolution (antialiased resize)."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    if x.shape[-1] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > resolution)
    return x


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    # flips and small shifts only: colour is what the metal/gemstone heads must read, so no colour jitter
    flip = torch.rand(len(x), generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    pad = max(1, x.shape[-1] // 16)
    padded = F.pad(x, (pad,) * 4, mode="replicate")
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=gen).tolist()
    return padded[..., dy:dy + x.shape[-2], dx:dx + x.shape[-1]]


def degrade(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Label-preserving degradations, each on a random half of the batch (images in [-1, 1]):
    a round trip through a smaller resolution (a quarter of the image's up to all of it; one size per
    batch), pixel noise (sd up to 0.08, i.e. ~10 levels), and an exposure gain of 0.9-1.1. No colour shifts: hue
    and saturation are what the metal and gemstone heads must read."""
    n, res = len(x), x.shape[-1]

    def half() -> torch.Tensor:
        return (torch.rand(n, generator=gen) < 0.5)[:, None, None, None]

    small = int(torch.randint(max(res // 4, 1), res + 1, (1,), generator=gen))
    if small < res:
        blurred = F.interpolate(F.interpolate(x, size=(small, small), mode="bilinear", align_corners=False,
                                              antialias=True), size=x.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.where(half(), blurred, x)
    sd = torch.rand(n, 1, 1, 1, generator=gen) * 0.08
    x = torch.where(half(), x + sd * torch.randn(x.shape, generator=gen), x)
    gain = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.1
    x = torch.where(half(), (x + 1) * gain - 1, x)
    return x.clamp(-1, 1)


def _loss(outputs: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    total = outputs[0].new_zeros(())
    for j, logits in enumerate(outputs):
        target = labels[:, j]
        if (target >= 0).any():  # a batch with no label for this head contributes nothing
            total = total + F.cross_entropy(logits, target, ignore_index=-1)
    return total


@torch.inference_mode()
def predict_tensor(model: AttributeClassifier, x: torch.Tensor, batch: int = 256, device="cpu") -> np.ndarray:
    """Float NCHW images in [-1, 1] at the classifier's resolution -> (N, A) int64 predicted value indices."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        logits = model(x[i:i + batch].to(device))
        out.append(torch.stack([lg.argmax(1) for lg in logits], 1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(model.heads)), np.int64)


def predict(model: AttributeClassifier, images: np.ndarray, batch: int = 256, device="cpu") -> np.ndarray:
    """uint8 NHWC images -> (N, A) int64 predicted value index per attribute."""
    return np.concatenate([predict_tensor(model, to_input(images[i:i + batch], model.resolution), batch, device)
                           for i in range(0, len(images), batch)] or [np.zeros((0, len(model.heads)), np.int64)])


def accuracy_per_attribute(pred: np.ndarray, labels: np.ndarray, schema: LabelSchema) -> dict[str, dict]:
    """Accuracy on labelled rows only (missing labels ignored), with the count it is based on."""
    out = {}
    for j, name in enumerate(schema.names):
        known = labels[:, j] >= 0
        n = int(known.sum())
        acc = float((pred[known, j] == labels[known, j]).mean()) if n else float("nan")
        out[name] = {"accuracy": acc, "n": n, "chance": 1.0 / max(schema.num_values(name), 1)}
    return out


def split_indices(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(count)
    n_val = min(max(1, int(round(count * val_fraction))), count - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def train_classifier(archive_path: str | Path, out_dir: str | Path, *, epochs: int = 20, batch_size: int = 32,
                     lr: float = 2e-3, width: int = 32, resolution: int | None = None, val_fraction: float = 0.15,
                     seed: int = 0, device: str = "cpu", robust: bool = True, log=print) -> dict:
    """Train on the archive's labelled images, evaluate on the held-out split, save to out_dir.
    robust: also train on degraded images (`degrade`); off only to reproduce the old classifier."""
    archive = Archive(archive_path)
    schema = archive.schema
    if len(schema) == 0:
        raise ValueError(f"{archive.path}: the archive has no label attributes to learn")
    if len(archive) < 10:
        raise ValueError(f"{archive.path}: only {len(archive)} images; the classifier needs at least 10")
    labelled = (archive.labels >= 0).any(axis=1)
    if not labelled.any():
        raise ValueError(f"{archive.path}: no image has a label")
    res = resolution or min(64, archive.resolution)
    train_idx, val_idx = split_indices(len(archive), val_fraction, seed)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = AttributeClassifier([schema.num_values(n) for n in schema.names], res, width).to(device)
    # all images fit in memory at the classifier's (small) resolution: resize once, not every epoch
    x_all = torch.cat([to_input(archive.rgb(slice(i, i + 512)), res) for i in range(0, len(archive), 512)])
    y_all = torch.from_numpy(archive.labels.astype(np.int64))
    x_tr, y_tr = x_all[train_idx], y_all[train_idx]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * max(1, (len(x_tr) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        total, batches = 0.0, 0
        for i in range(0, len(perm), batch_size):
            b = perm[i:i + batch_size]
            if len(b) < 2:  # BatchNorm needs more than one sample
                continue
            xb = _augment(x_tr[b], gen)
            if robust:
                xb = degrade(xb, gen)
            loss = _loss(model(xb.to(device)), y_tr[b].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, batches = total + loss.item(), batches + 1
        log(f"epoch {epoch + 1}/{epochs}  loss {total / max(batches, 1):.3f}  {time.time() - t0:.0f}s")
    val_images = archive.rgb(val_idx)
    val_labels = archive.labels[val_idx].astype(np.int64)
    heldout = accuracy_per_attribute(predict(model, val_images, device=device), val_labels, schema)
    # the same reals, degraded (fixed seed): how far the scores on generated images can be trusted
    degraded = degrade(to_input(val_images, res), torch.Generator().manual_seed(seed + 1))
    heldout_degraded = accuracy_per_attribute(predict_tensor(model, degraded, device=device), val_labels, schema)
    info = {
        "format": FORMAT, "version": 1, "schema": schema.to_json(), "resolution": res, "width": width,
        "archive": str(archive.path), "content_hash": archive.content_hash, "epochs": epochs, "seed": seed,
        "train_count": int(len(train_idx)), "heldout_count": int(len(val_idx)), "heldout": heldout,
        "augment": ["flip", "shift"] + (["degrade"] if robust else []), "heldout_degraded": heldout_degraded,
    }
    save_classifier(model, info, out_dir)
    return info


def save_classifier(model: AttributeClassifier, info: dict, out_dir: str | Path) -> Path:
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS))
    (out / CONFIG).write_text(json.dumps(info, indent=1))
    return out


def load_classifier(path: str | Path, device="cpu") -> tuple[AttributeClassifier, LabelSchema, dict]:
    from safetensors.torch import load_file

    path = Path(path)
    cfg, weights = path / CONFIG, path / WEIGHTS
    if not cfg.is_file() or not weights.is_file():
        raise FileNotFoundError(f"{path}: not a classifier folder (needs {CONFIG} and {WEIGHTS}; "
                                "make one with `jewelgan classifier train`)")
    info = read_tagged_json(cfg, FORMAT, version=1)
    schema = LabelSchema.from_json(info["schema"])
    model = AttributeClassifier([schema.num_values(n) for n in schema.names], info["resolution"], info["width"])
    model.load_state_dict(load_file(str(weights)))
    return model.to(device).eval(), schema, info


def score_predictions(requested: np.ndarray, predicted: np.ndarray, values: list[str]) -> dict:
    """Accuracy and confusion matrix (rows: requested value, columns: predicted value)."""
    k = len(values)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (requested, predicted), 1)
    return {"accuracy": float((requested == predicted).mean()) if len(requested) else float("nan"),
            "values": list(values), "confusion": confusion.tolist(), "chance": 1.0 / k}


def score_generator(G, schema: LabelSchema, classifier, n_per_value: int = 32, seed: int = 0,
                    device="cpu", attributes: list[str] | None = None) -> dict[str, dict]:
    """Generate n_per_value images for each value of each attribute (others drawn as the sampler
    does), classify them, and report per-attribute accuracy and confusion matrix."""
    from jewelgan.inference import sample_images

    model, cschema, info = classifier if isinstance(classifier, tuple) else load_classifier(classifier, device)
    out: dict[str, dict] = {}
    for name in attributes or schema.names:
        if name not in cschema.attributes:
            continue  # the classifier never learned this attribute
        gen_values = schema.attributes[name]
        cls_values = cschema.attributes[name]
        values = [v for v in gen_values if v in cls_values]
        if not values:
            continue
        j = cschema.names.index(name)
        requested, predicted = [], []
        for k, value in enumerate(values):
            images = sample_images(G, schema, n_per_value, attrs={name: value}, seed=seed + 1000 * k)
            predicted.append(predict(model, images, device=device)[:, j])
            requested.append(np.full(len(images), cls_values.index(value)))
        result = score_predictions(np.concatenate(requested), np.concatenate(predicted), cls_values)
        result["heldout_accuracy"] = info.get("heldout", {}).get(name, {}).get("accuracy")
        # None for classifiers trained before degraded reals were scored (and without degradation)
        result["heldout_degraded_accuracy"] = info.get("heldout_degraded", {}).get(name, {}).get("accuracy")
        out[name] = result
    return out
