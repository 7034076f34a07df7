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

"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from jewelgan.models.layers import (SQRT2, EqualLinear, LabelEmbedding, channel_widths, check_inputs, check_labels,
                                    normalize_2nd_moment)


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, sizes: list[int], w_dim: int, num_layers: int = 4,
                 embed_dim: int | None = None, lr_mul: float = 0.01):
        super().__init__()
        self.z_dim, self.w_dim, self.sizes = z_dim, w_dim, list(sizes)
        self.embed = LabelEmbedding(self.sizes, embed_dim or w_dim) if self.sizes else None
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


def _blur_kernel(channels: int) -> torch.Tensor:
    """Depthwise 4x4 [1,3,3,1] outer product, gain 4 (keeps the mean after 2x zero-insertion)."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = (f[:, None] * f[None, :]) / 16.0
    return k.expand(channels, 1, 4, 4).contiguous()


class ModulatedConv(nn.Module):
    """Modulated (and optionally demodulated) convolution, modulation applied to activations."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, w_dim: int, demodulate: bool = True,
                 up: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.weight_gain = 1 / math.sqrt(in_ch * kernel * kernel)
        self.demodulate, self.up, self.padding = demodulate, up, kernel // 2
        if up:  # a fixed filter, not a weight: kept out of the state dict (and of every saved model)
            self.register_buffer("blur", _blur_kernel(out_ch), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)  # (B, in_ch)
        weight = self.weight * self.weight_gain
        # scaling input channels commutes with upsampling, so do it at the lower resolution
        x = x * styles.to(x.dtype)[:, :, None, None]
        if self.up:
            # transposed conv (stride 2) then the [1,3,3,1] low-pass, as in StyleGAN2: a quarter of the
            # multiply-adds of upsampling first and convolving at the high resolution
            x = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)
            x = F.conv2d(x, self.blur.to(x.dtype), padding=1, groups=self.blur.shape[0])
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

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, noise: bool = True,
                 channels: int = 3):
        super().__init__()
        self.first = resolution == 4
        self.resolution = resolution
        if self.first:
            self.const = nn.Parameter(torch.randn(out_ch, 4, 4))
            self.convs = nn.ModuleList([SynthesisLayer(out_ch, out_ch, w_dim, 4, noise=noise)])
        else:
            self.convs = nn.ModuleList([SynthesisLayer(in_ch, out_ch, w_dim, resolution, up=True, noise=noise),
                                        SynthesisLayer(out_ch, out_ch, w_dim, resolution, noise=noise)])
        self.torgb = ToRGB(out_ch, w_dim, channels)

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


class StyleGenerator(nn.Module):
    """Conditional StyleGAN2-style generator: G(z, labels) -> images (B, C, R, R), C = 3 (RGB) or 4 (RGB + alpha).

    truncation: psi in [0, 1]; 1 disables it, 0 gives the per-condition mean image.
    In eval mode outputs are clamped to [-1, 1] and noise is the constant buffers, or none with
    eval_noise="none" (reproducible per seed either way); in training mode noise is random and style
    mixing is applied with probability mixing_prob.
    """

    def __init__(self, sizes: list[int], resolution: int = 64, z_dim: int = 128, w_dim: int = 256,
                 mapping_layers: int = 4, channel_base: int = 8192, channel_max: int = 256,
                 mixing_prob: float = 0.9, embed_dim: int | None = None, mean_w_samples: int = 1024,
                 output: str = "linear", mapping_lr_mul: float = 0.01, noise: bool = True,
                 noise_max_res: int | None = None, eval_noise: str = "const", noise_drop: float = 0.0,
                 channels: int = 3):
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
        self.sizes = list(sizes)
        self.resolution, self.z_dim, self.w_dim = resolution, z_dim, w_dim
        self.mixing_prob = float(mixing_prob)
        self.mean_w_samples = int(mean_w_samples)
        self.config = dict(sizes=self.sizes, resolution=resolution, z_dim=z_dim, w_dim=w_dim,
                           mapping_layers=mapping_layers, channel_base=channel_base,
                           channel_max=channel_max, mixing_prob=mixing_prob, embed_dim=embed_dim,
                           mean_w_samples=mean_w_samples, output=output, mapping_lr_mul=mapping_lr_mul,
                           noise=bool(noise), noise_max_res=noise_max_res, eval_noise=eval_noise,
                           noise_drop=float(noise_drop), channels=channels)
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
        self.mapping = MappingNetwork(z_dim, self.sizes, w_dim, mapping_layers, embed_dim,
                                      lr_mul=float(mapping_lr_mul))
        widths = channel_widths(resolution, channel_base, channel_max)
        self.widths = widths
        blocks, prev = [], None
        for r, ch in widths.items():
            noisy = self.noise and (noise_max_res is None or r <= noise_max_res)
            blocks.append(SynthesisBlock(prev or ch, ch, w_dim, r, noisy, channels))
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

    def mean_w_latents(self, n: int | None = None) -> torch.Tensor:
        """The fixed z whose mapped w are averaged into a condition's mean w (also baked into ONNX exports)."""
        return torch.randn(n or self.mean_w_samples, self.z_dim, generator=torch.Generator().manual_seed(12345))

    @torch.no_grad()
    def mean_w(self, labels: torch.Tensor, n: int | None = None) -> torch.Tensor:
        """Per-condition mean w: mapping outputs for these labels averaged over n fixed z (cached)."""
        labels = check_labels(labels, self.sizes, "StyleGenerator.mean_w",
                              None if labels is None else labels.shape[0])
        n = n or self.mean_w_samples
        key = self._mapping_key()
        if self._mean_w_cache.get("key") != key:
            self._mean_w_cache = {"key": key}
        device = next(self.parameters()).device
        z = self.mean_w_latents(n).to(device)
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
        labels = check_inputs(z, labels, self.z_dim, self.sizes, "StyleGenerator")
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
