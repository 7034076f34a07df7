"""A StyleGAN2-family conditional generator in plain PyTorch (no custom CUDA ops; CPU-friendly).

Pieces (Karras et al. 2020, "Analyzing and improving the image quality of StyleGAN"):
- mapping network: normalised z, concatenated with a normalised sum of attribute embeddings, through
  an MLP with equalised learning rate (lr multiplier 0.01) to w. Every attribute has an embedding
  table with one extra learnt "unspecified" row, used for label -1, so partly labelled data trains.
- synthesis network: a learnt 4x4 constant, then per resolution two modulated + demodulated 3x3
  convolutions (the first a stride-2 transposed convolution followed by the [1,3,3,1] FIR low-pass), per-pixel
  noise with a learnt strength, and skip connections through 1x1 toRGB layers.
- modulation is applied to activations instead of weights (scale input channels by the style, run one
  ordinary batched convolution, scale output channels by the demodulation factor). This is exactly
  equal to per-sample weight modulation and is much faster on CPU than a grouped convolution.
- truncation toward the per-condition mean w (mean of mapping outputs over many z for the same labels),
  style-mixing regularisation in training mode, and constant (or, with eval_noise="none", no) noise in
  eval mode so a seed always gives the same image whatever batch it is generated in.

`PRESETS` holds the model and training settings selected with `--preset`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from jewelgan.models.layers import LabelEmbedding

SQRT2 = math.sqrt(2.0)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def check_labels(labels: torch.Tensor | None, num_values: list[int], who: str, batch: int | None = None,
                 device=None) -> torch.Tensor:
    """Validate (B, A) int labels against the schema sizes; -1 means unspecified.

    None means every attribute unspecified; an unconditional model (no attributes) ignores labels.
    """
    if labels is None or not num_values:
        if batch is None:
            raise ValueError(f"{who}: labels are required (use -1 for unspecified attributes)")
        return torch.full((batch, len(num_values)), -1, dtype=torch.long, device=device)
    if labels.dim() != 2 or labels.shape[1] != len(num_values):
        raise ValueError(f"{who}: labels must have shape (B, {len(num_values)}), got {tuple(labels.shape)}")
    if labels.numel():
        hi = torch.tensor(num_values, device=labels.device)
        bad = (labels < -1) | (labels >= hi)
        if bool(bad.any()):
            col = int(bad.nonzero()[0, 1])
            raise ValueError(f"{who}: label {int(labels[bad][0])} out of range for attribute {col} "
                             f"(valid 0..{num_values[col] - 1} or -1)")
    return labels.long()


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weights stored N(0, 1/lr_mul), scaled at run time."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(in_dim)
        self.bias_gain = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.activation else x


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, num_values: list[int], w_dim: int, num_layers: int = 4,
                 embed_dim: int | None = None, lr_mul: float = 0.01):
        super().__init__()
        self.z_dim, self.w_dim, self.num_values = z_dim, w_dim, list(num_values)
        self.embed = LabelEmbedding(self.num_values, embed_dim or w_dim) if self.num_values else None
        in_dim = z_dim + (self.embed.dim if self.embed is not None else 0)
        dims = [in_dim] + [w_dim] * num_layers
        self.layers = nn.Sequential(*[
            EqualLinear(a, b, lr_mul=lr_mul, activation=True) for a, b in zip(dims[:-1], dims[1:])
        ])

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            x = torch.cat([x, normalize_2nd_moment(self.embed(labels))], dim=1)
        return self.layers(x)


def _blur_kernel(x: torch.Tensor) -> torch.Tensor:
    """Depthwise 4x4 [1,3,3,1] outer product, gain 4 (keeps the mean after 2x zero-insertion)."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], device=x.device)
    k = (f[:, None] * f[None, :]) / 16.0
    return k.to(x.dtype).expand(x.shape[1], 1, 4, 4)


class ModulatedConv(nn.Module):
    """Modulated (and optionally demodulated) convolution, modulation applied to activations."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, w_dim: int, demodulate: bool = True,
                 up: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.weight_gain = 1 / math.sqrt(in_ch * kernel * kernel)
        self.demodulate, self.up, self.padding = demodulate, up, kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)  # (B, in_ch)
        weight = self.weight * self.weight_gain
        # scaling input channels commutes with upsampling, so do it at the lower resolution
        x = x * styles.to(x.dtype)[:, :, None, None]
        if self.up:
            # transposed conv (stride 2) then the [1,3,3,1] low-pass, as in StyleGAN2: a quarter of the
            # multiply-adds of upsampling first and convolving at the high resolution
            x = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)
            x = F.conv2d(F.pad(x, [1, 1, 1, 1]), _blur_kernel(x), groups=x.shape[1])
        else:
            x = F.conv2d(x, weight.to(x.dtype), padding=self.padding)
        if self.demodulate:
            # d[b, o] = 1 / ||w[o] * s[b]||: per-sample, per-output-channel norm of the modulated kernel
            dcoef = (styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()
            x = x * dcoef.to(x.dtype)[:, :, None, None]
        return x


OUTPUTS = ("linear", "tanh", "tanh_leak", "tanh_leak_bounded")
LEAK_BOUND = 3.0  # tanh(3) = 0.995: 255 after rounding to 8 bits, so every displayable value is inside it

# how samples (eval mode) take the noise inputs; random noise only in training, so an image is reproducible
# from its seed and labels alone
EVAL_NOISE_MODES = ("const", "none")


class SynthesisLayer(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, up: bool = False,
                 noise: bool = True):
        super().__init__()
        self.conv = ModulatedConv(in_ch, out_ch, 3, w_dim, up=up)
        self.resolution = resolution
        self.use_noise = noise
        if noise:
            self.noise_strength = nn.Parameter(torch.zeros(()))
            self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str,
                noise_keep: torch.Tensor | None = None) -> torch.Tensor:
        """noise_keep: (B, 1, 1, 1) 0/1 per sample, which samples get random noise (None: all)."""
        x = self.conv(x, w)
        if not self.use_noise:
            noise_mode = "none"
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            if noise_keep is not None:
                noise = noise * noise_keep.to(x.dtype)
            x = x + noise * self.noise_strength.to(x.dtype)
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength.to(x.dtype)
        return F.leaky_relu(x + self.bias.to(x.dtype)[None, :, None, None], 0.2) * SQRT2


class ToRGB(nn.Module):
    def __init__(self, in_ch: int, w_dim: int, channels: int = 3):
        super().__init__()
        self.conv = ModulatedConv(in_ch, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.to(x.dtype)[None, :, None, None]


class SynthesisBlock(nn.Module):
    """One resolution: [upsampling conv,] conv, toRGB; the RGB skip is upsampled and added."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, noise: bool = True):
        super().__init__()
        self.first = resolution == 4
        self.resolution = resolution
        if self.first:
            self.const = nn.Parameter(torch.randn(out_ch, 4, 4))
            self.convs = nn.ModuleList([SynthesisLayer(out_ch, out_ch, w_dim, 4, noise=noise)])
        else:
            self.convs = nn.ModuleList([SynthesisLayer(in_ch, out_ch, w_dim, resolution, up=True, noise=noise),
                                        SynthesisLayer(out_ch, out_ch, w_dim, resolution, noise=noise)])
        self.torgb = ToRGB(out_ch, w_dim)

    @property
    def num_conv(self) -> int:
        return len(self.convs)

    def forward(self, x, img, ws, noise_mode, noise_keep=None):
        """ws: (B, num_conv + 1, w_dim): one w per conv, the last for toRGB."""
        if self.first:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1).to(ws.dtype if x is None else x.dtype)
        for i, layer in enumerate(self.convs):
            x = layer(x, ws[:, i], noise_mode, noise_keep)
        y = self.torgb(x, ws[:, -1])
        if img is not None:
            y = y + F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
        return x, y


def channel_widths(resolution: int, channel_base: int, channel_max: int, channel_min: int = 8) -> dict[int, int]:
    out = {}
    r = 4
    while r <= resolution:
        out[r] = int(max(channel_min, min(channel_base // r, channel_max)))
        r *= 2
    return out


class StyleGenerator(nn.Module):
    """Conditional StyleGAN2-style generator: G(z, labels) -> images (B, 3, R, R).

    truncation: psi in [0, 1]; 1 disables it, 0 gives the per-condition mean image.
    In eval mode outputs are clamped to [-1, 1] and noise is the constant buffers, or none with
    eval_noise="none" (reproducible per seed either way); in training mode noise is random and style
    mixing is applied with probability mixing_prob.
    """

    def __init__(self, num_values: list[int], resolution: int = 64, z_dim: int = 128, w_dim: int = 256,
                 mapping_layers: int = 4, channel_base: int = 8192, channel_max: int = 256,
                 mixing_prob: float = 0.9, embed_dim: int | None = None, mean_w_samples: int = 1024,
                 output: str = "linear", mapping_lr_mul: float = 0.01, noise: bool = True,
                 noise_max_res: int | None = None, eval_noise: str = "const", noise_drop: float = 0.0):
        super().__init__()
        if eval_noise not in EVAL_NOISE_MODES:
            raise ValueError(f"StyleGenerator eval_noise must be 'const' or 'none', got {eval_noise!r}")
        if not 0.0 <= noise_drop <= 1.0:
            raise ValueError(f"StyleGenerator noise_drop must be in [0, 1], got {noise_drop!r}")
        if output not in OUTPUTS:
            raise ValueError(f"StyleGenerator output must be {', '.join(repr(o) for o in OUTPUTS)}, got {output!r}")
        # tanh keeps fakes inside [-1, 1]: against a frozen feature network, a linear output learns to
        # leave the range of real pixels, where the pretrained features are easy to exploit
        self.output = output
        if resolution < 8 or resolution > 1024 or resolution & (resolution - 1):
            raise ValueError(f"StyleGenerator resolution must be a power of two in 8..1024, got {resolution}")
        self.num_values = list(num_values)
        self.resolution, self.z_dim, self.w_dim = resolution, z_dim, w_dim
        self.mixing_prob = float(mixing_prob)
        self.mean_w_samples = int(mean_w_samples)
        self.config = dict(num_values=self.num_values, resolution=resolution, z_dim=z_dim, w_dim=w_dim,
                           mapping_layers=mapping_layers, channel_base=channel_base,
                           channel_max=channel_max, mixing_prob=mixing_prob, embed_dim=embed_dim,
                           mean_w_samples=mean_w_samples, output=output, mapping_lr_mul=mapping_lr_mul,
                           noise=bool(noise), noise_max_res=noise_max_res, eval_noise=eval_noise,
                           noise_drop=float(noise_drop))
        # per-pixel noise inputs; off, every image is a function of (z, labels) alone
        self.noise = bool(noise)
        self.noise_max_res = noise_max_res  # None: every resolution
        # what eval mode (sampling, evaluation) adds: the fixed noise buffers, or nothing. What a very short
        # CPU run (~20 kimg) adds with noise is mostly speckle; a longer one uses it (docs/experiments.md)
        self.eval_noise = eval_noise
        # share of training samples drawn with no noise at all: with eval_noise="none" the noise-free
        # images are what sampling shows, yet a G trained only with noise leans on it (docs/experiments.md)
        self.noise_drop = float(noise_drop)
        # StyleGAN2's 0.01 is tuned for tens of millions of images; short CPU budgets may want more
        self.mapping = MappingNetwork(z_dim, self.num_values, w_dim, mapping_layers, embed_dim,
                                      lr_mul=float(mapping_lr_mul))
        widths = channel_widths(resolution, channel_base, channel_max)
        self.widths = widths
        blocks, prev = [], None
        for r, ch in widths.items():
            noisy = self.noise and (noise_max_res is None or r <= noise_max_res)
            blocks.append(SynthesisBlock(prev or ch, ch, w_dim, r, noisy))
            prev = ch
        self.blocks = nn.ModuleList(blocks)
        # consecutive blocks share a w: block b's toRGB uses the same w as block b+1's first conv
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1
        self._mean_w_cache: dict = {}

    # -- mapping, truncation, mixing --------------------------------------------------------------
    @torch.no_grad()
    def _mapping_key(self) -> tuple:
        # the cache must follow in-place weight changes (optimiser, EMA, load_state_dict), some of which
        # bypass version counters (p.data.copy_): a cheap fingerprint of the values is the safe key
        return tuple((p.data_ptr(), p._version, float(p.double().sum()), float(p.double().square().sum()))
                     for p in self.mapping.parameters())

    @torch.no_grad()
    def mean_w(self, labels: torch.Tensor, n: int | None = None) -> torch.Tensor:
        """Per-condition mean w: mapping outputs for these labels averaged over n fixed z (cached)."""
        labels = check_labels(labels, self.num_values, "StyleGenerator.mean_w",
                              None if labels is None else labels.shape[0])
        n = n or self.mean_w_samples
        key = self._mapping_key()
        if self._mean_w_cache.get("key") != key:
            self._mean_w_cache = {"key": key}
        device = next(self.parameters()).device
        z = torch.randn(n, self.z_dim, generator=torch.Generator().manual_seed(12345)).to(device)
        out = []
        for row in labels.tolist():
            k = (tuple(row), n)
            if k not in self._mean_w_cache:
                lab = torch.tensor([row], device=device, dtype=torch.long).expand(n, -1)
                self._mean_w_cache[k] = self.mapping(z, lab).mean(dim=0)
            out.append(self._mean_w_cache[k])
        return torch.stack(out)

    def map(self, z: torch.Tensor, labels: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        """(B, z_dim), (B, A) -> ws (B, num_ws, w_dim), with truncation and (training) style mixing."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"StyleGenerator: z must have shape (B, {self.z_dim}), got {tuple(z.shape)}")
        labels = check_labels(labels, self.num_values, "StyleGenerator", z.shape[0], z.device)
        if labels.shape[0] != z.shape[0]:
            raise ValueError(f"StyleGenerator: {labels.shape[0]} label rows for {z.shape[0]} latents")
        w = self.mapping(z, labels)
        if truncation != 1.0:
            w_mean = self.mean_w(labels).to(w.dtype)
            w = w_mean.lerp(w, float(truncation))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if self.training and self.mixing_prob > 0:
            # style mixing: from a random layer on, use the w of another z with the same labels
            w2 = self.mapping(torch.randn_like(z), labels)
            cutoff = torch.randint(1, self.num_ws, (z.shape[0], 1, 1), device=z.device)
            mix = torch.rand(z.shape[0], 1, 1, device=z.device) < self.mixing_prob
            layer = torch.arange(self.num_ws, device=z.device).view(1, -1, 1)
            ws = torch.where(mix & (layer >= cutoff), w2.unsqueeze(1), ws)
        return ws

    def synthesis(self, ws: torch.Tensor, noise_mode: str | None = None) -> torch.Tensor:
        if ws.dim() != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"StyleGenerator.synthesis: ws must be (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        noise_mode = noise_mode or ("random" if self.training else self.eval_noise)
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be random, const or none, got {noise_mode!r}")
        keep = None
        if noise_mode == "random" and self.noise_drop > 0:  # one draw per sample, shared by every layer
            keep = (torch.rand(ws.shape[0], 1, 1, 1, device=ws.device) >= self.noise_drop).to(ws.dtype)
        x = img = None
        i = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i: i + block.num_conv + 1], noise_mode, keep)
            i += block.num_conv
        return self._output(img)

    def _output(self, img: torch.Tensor) -> torch.Tensor:
        """The output non-linearity on the summed toRGB skips."""
        if self.output == "tanh":
            return torch.tanh(img)
        if self.output == "tanh_leak":
            # forward: tanh; backward: tanh's slope plus 0.1, so a saturated pixel can still be pulled back
            return torch.tanh(img) + 0.1 * (img - img.detach())
        if self.output == "tanh_leak_bounded":
            # the same leak, only while the pre-activation is within +-LEAK_BOUND. Unbounded, it passes on
            # without end D's call for "whiter" where reals sit exactly at the range's end (a photo's pure
            # white backdrop, 1.0): on real photos every channel of every pixel was pinned at +-1 within
            # 5 kimg (docs/experiments.md, 2026-12-02). Beyond the bound only tanh's own fading slope pushes,
            # which stalls, so a saturated pixel stays within the leak's reach of coming back.
            inside = img.clamp(-LEAK_BOUND, LEAK_BOUND)
            return torch.tanh(img) + 0.1 * (inside - inside.detach())
        return img if self.training else img.clamp(-1, 1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor, truncation: float = 1.0,
                noise_mode: str | None = None) -> torch.Tensor:
        return self.synthesis(self.map(z, labels, truncation), noise_mode)


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ---- presets -----------------------------------------------------------------------------------------
# A preset is the architecture (model_args, read by the builder below) plus the TrainConfig fields that
# go with it. Measured figures for each are in docs/configs.md. CPU presets are chosen for throughput
# first: on a CPU budget, images seen per second is quality.

PRESETS: dict[str, dict] = {
    "cpu-64": dict(
        # Designed for throughput on a 2-core CPU; each choice was measured in 30-minute time-to-quality
        # runs on the studio and on real photos (docs/experiments.md):
        # - G: small widths, a 2-layer mapping at full lr, no style mixing (both only delayed conditioning);
        #   noise inputs, with the fixed buffers at sampling (G follows the labels far better with them);
        #   tanh_leak_bounded output: fakes stay in the reals' range, saturated pixels keep a gradient back,
        #   and nothing runs away where reals sit at exactly +-1 (a photo's pure white backdrop).
        # - D: DCGAN's BatchNorm D with projection at a quarter width (d_ndf 16): it taught shapes where the
        #   residual and projected Ds left blobs, and the narrow width buys ~2x the images per minute.
        model_args=dict(w_dim=128, mapping_layers=2, channel_base=1024, channel_max=128, mixing_prob=0.0,
                        mapping_lr_mul=1.0, output="tanh_leak_bounded", eval_noise="const", d="dcgan", d_ndf=16),
        config=dict(res=64, z_dim=64, batch=32, loss="ns",
                    # equalised-lr G needs ~10x D's lr
                    lr_g=2e-3, lr_d=2e-4, beta1=0.5, beta2=0.999, ema_kimg=2.0,
                    # ADA without its colour group: colour is a label here (metal, gemstone), and D's attribute
                    # classifier learnt it from recoloured reals
                    augment="ada:bg", r1=0.0,
                    # where this CPU runs bf16 faster (train/precision.py); the frozen guidance network stays fp32
                    bf16="auto",
                    # AC-GAN: D classifies the reals' attributes and G is scored on them (category, metal)
                    cls_weight=3.0,
                    # frozen EfficientNet-Lite0 guidance (train/guidance.py): feature matching over the batch and
                    # per attribute value, a second D on the pooled features, and matching of their spread
                    guide_fm=10.0, guide_cfm=30.0, guide_adv=1.0, guide_fstd=30.0,
                    # that network sees the fakes at 48 px: at 64 px its critic dominated G's loss and G followed
                    # the metal label less (FID better, metal accuracy 0.87 against 0.96)
                    guide_res=48,
                    # +36 % images/s on CPU (benchmarks/train_throughput.py)
                    channels_last=True),
    ),
    "cpu-64-projected": dict(
        model_args=dict(w_dim=128, mapping_layers=2, channel_base=2048, channel_max=128, mixing_prob=0.5,
                        output="tanh", d="projected", d_input_res=64, d_head_channels=64,
                        d_proj_channels=[32, 64, 128, 256]),
        config=dict(res=64, z_dim=64, batch=32, loss="hinge", lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.99,
                    ema_kimg=2.0, augment="diffaug:color,translation,cutout", r1=0.0, bf16=False),
    ),
    "gpu-128": dict(
        model_args=dict(w_dim=256, mapping_layers=4, channel_base=16384, channel_max=256, mixing_prob=0.9,
                        d="projected", d_input_res=224, d_head_channels=128, d_proj_channels=[64, 128, 256, 512]),
        config=dict(res=128, z_dim=256, batch=64, loss="hinge", lr_g=2e-3, lr_d=2e-3, beta1=0.0, beta2=0.99,
                    ema_kimg=10.0, augment="diffaug:color,translation,cutout", r1=0.0, bf16=True),
    ),
    "gpu-256": dict(
        model_args=dict(w_dim=512, mapping_layers=8, channel_base=32768, channel_max=512, mixing_prob=0.9,
                        d="projected", d_input_res=256, d_head_channels=128, d_proj_channels=[64, 128, 256, 512]),
        config=dict(res=256, z_dim=512, batch=64, loss="hinge", lr_g=2e-3, lr_d=2e-3, beta1=0.0, beta2=0.99,
                    ema_kimg=10.0, augment="diffaug:color,translation,cutout", r1=0.0, bf16=True),
    ),
    "gpu-512": dict(
        model_args=dict(w_dim=512, mapping_layers=8, channel_base=32768, channel_max=512, mixing_prob=0.9,
                        d="resnet", d_channel_base=32768, d_channel_max=512),
        # lazy R1 every 16 steps (StyleGAN2's): with R1 at every step the H200 ran 24.7 images/s
        config=dict(res=512, z_dim=512, batch=32, loss="ns", lr_g=2.5e-3, lr_d=2.5e-3, beta1=0.0, beta2=0.99,
                    ema_kimg=10.0, augment="ada:bgc,target=0.6,speed=500000", r1=8.0, r1_every=16, bf16=True),
    ),
}


def get_preset(name: str) -> dict:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_config(name: str) -> dict:
    """TrainConfig fields for a preset (model="style", model_args naming the preset).

    Callers apply their own explicit options on top: `TrainConfig(**{**preset_config(p), **mine})`.
    """
    preset = get_preset(name)
    return {"model": "style", **preset["config"], "model_args": {"preset": name}}


G_ARGS = ("w_dim", "mapping_layers", "channel_base", "channel_max", "mixing_prob", "embed_dim", "mean_w_samples",
          "output", "mapping_lr_mul", "noise", "noise_max_res", "eval_noise", "noise_drop")
D_ARGS = ("d", "d_ndf", "d_max_ch", "d_norm", "d_colour", "d_input_res", "d_head_channels", "d_proj_channels", "d_cond_dim", "d_channel_base", "d_channel_max")


def resolve_model_args(model_args: dict, res: int) -> dict:
    """model_args -> full settings: the named preset (or defaults sized for res), then explicit keys.

    `preset: null` marks settings already written out (what a run stores): nothing is added beneath
    them, so an option introduced later takes its constructor default, the old behaviour.
    """
    args = dict(model_args or {})
    unknown = set(args) - set(G_ARGS) - set(D_ARGS) - {"preset"}
    if unknown:
        raise ValueError(f"model_args for style: unknown option(s) {', '.join(sorted(unknown))}; "
                         f"known: preset, {', '.join(G_ARGS + D_ARGS)}")
    if "preset" in args and args["preset"] is None:
        base = {}
    elif args.get("preset") is not None:
        base = dict(get_preset(args["preset"])["model_args"])
    else:  # no preset: the nearest one by resolution
        base = dict(PRESETS["cpu-64" if res <= 64 else "gpu-128" if res <= 128 else "gpu-256" if res <= 256
                            else "gpu-512"]["model_args"])
    args.pop("preset", None)
    base.update(args)
    if base.get("d", "projected") not in ("projected", "resnet", "dcgan"):
        raise ValueError(f"model_args.d for style must be 'dcgan', 'projected' or 'resnet', got {base['d']!r}")
    return base


def _build_style(config, schema, discriminator: bool = True):
    from jewelgan.models.layers import schema_sizes

    res = int(config.res or 64)
    args = resolve_model_args(config.model_args, res)
    sizes = schema_sizes(schema) if getattr(config, "conditional", True) else []
    G = StyleGenerator(sizes, resolution=res, z_dim=int(config.z_dim),
                       **{k: args[k] for k in G_ARGS if k in args})
    D = None
    if discriminator:
        if args.get("d", "projected") == "projected":
            from jewelgan.models.projected_d import ProjectedDiscriminator

            D = ProjectedDiscriminator(sizes, resolution=res, input_res=args.get("d_input_res"),
                                       head_channels=int(args.get("d_head_channels", 64)),
                                       proj_channels=tuple(args.get("d_proj_channels", (32, 64, 128, 256))),
                                       cond_dim=int(args.get("d_cond_dim", 64)))
        elif args["d"] == "dcgan":
            from jewelgan.models.dcgan import DCGANDiscriminator, default_d_norm

            D = DCGANDiscriminator(res, sizes, int(args.get("d_ndf", 64)), int(args.get("d_max_ch", 512)),
                                   args.get("d_norm", default_d_norm(config)), config.cls_weight > 0,
                                   int(args.get("d_colour", 0)))
        else:
            from jewelgan.models.resnet_d import ResNetDiscriminator

            D = ResNetDiscriminator(sizes, resolution=res, channel_base=int(args.get("d_channel_base", 8192)),
                                    channel_max=int(args.get("d_channel_max", 256)))
    return G, D


def _resolve_args(config) -> dict:
    """What a run stores as model_args: every setting written out, no preset name to re-read later."""
    return {"preset": None, **resolve_model_args(config.model_args, int(config.res or 64))}


_build_style.resolve_args = _resolve_args

try:  # the registry is the training engine's; the models above work without it
    from jewelgan.models.registry import register_model

    build_style = register_model("style")(_build_style)
except ImportError:  # pragma: no cover
    build_style = _build_style
