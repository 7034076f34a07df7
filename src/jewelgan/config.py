"""Typed, validated training configuration, read from and written to YAML or JSON.

One dataclass holds everything a run needs, so a run is reproducible from its config file and seed.
Validation happens on construction and names the offending field, because a typo found after an
hour of training is an hour lost.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOSSES = ("ns", "hinge", "wgan-gp")
ON_NAN = ("lower-lr", "stop")
ON_COLLAPSE = ("restore", "stop", "off")
DEVICES = ("auto", "cpu", "cuda")

# fields that may change when a run is resumed: budgets and bookkeeping, never the maths
RESUME_OVERRIDABLE = frozenset({
    "kimg", "minutes", "out", "progress", "log_every", "grid_every", "ckpt_every", "keep_last",
    "eval_every", "eval_n", "eval_metrics", "tensorboard", "on_nan", "max_recoveries", "threads",
    "on_collapse", "collapse_patience",
})


class ConfigError(ValueError):
    """A config value is missing, of the wrong type or out of range."""


@dataclass
class TrainConfig:
    """Everything that defines a training run. Budgets are in kimg (thousands of real images shown to D)."""

    data: str = ""                       # dataset archive folder
    model: str = "dcgan"                 # registry name: mlp, dcgan, style, ...
    res: int | None = None               # training resolution; None = the archive's (smaller = downscaled)
    batch: int = 32                      # global batch (split across ranks under torchrun)
    kimg: float | None = None            # stop after this many thousand real images
    minutes: float | None = None         # or after this much training time (whichever comes first)
    out: str = "runs"                    # parent folder of run directories
    name: str | None = None              # run directory name; default NNNNN-model-res
    seed: int = 0

    # model
    z_dim: int = 100
    conditional: bool = True             # condition on the archive's labels when it has any
    model_args: dict = field(default_factory=dict)  # builder-specific options (channels, depth, ...)

    # objective and optimiser (the seed's Adam defaults)
    loss: str = "ns"
    r1: float = 0.0                      # R1 gamma on real images (0 = off)
    r1_every: int = 1                    # lazy regularisation interval in steps
    gp: float = 10.0                     # WGAN-GP lambda (used with loss=wgan-gp)
    cls_weight: float = 0.0              # auxiliary attribute classifier on D (AC-GAN): weight of its loss
    guide_fm: float = 0.0                # G loss: feature matching on a frozen ImageNet network (train/guidance.py)
    guide_cfm: float = 0.0               # G loss: the same feature matching per attribute value (conditional)
    guide_adv: float = 0.0               # G loss: a second D, an MLP on those features (vision-aided)
    guide_fstd: float = 0.0              # G loss: the fakes' per-channel spread of those features matched to the reals'
    guide_cls: float = 0.0               # G loss: attribute classifiers on that network's features
    guide_colour: float = 0.0            # G loss: per attribute value, the pixel-colour quantiles matched to the reals'
    guide_res: int = 64                  # input resolution of that network
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_rampdown: float = 0.0             # last share of the budget (kimg or minutes) over which both lrs fall to 0
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1                     # D updates per G update
    ema_kimg: float = 10.0               # half-life of the G EMA in kimg (0 = no averaging)
    ema_rampup: float = 0.05             # half-life <= this share of images seen so far (early samples useful)
    augment: str = ""                    # spec for jewelgan.data.augment.build_augment ("" = none)
    hflip: bool = True                   # mirror training images (product shots are near-symmetric)

    # speed and reproducibility
    device: str = "auto"
    bf16: bool | str = False             # bf16 autocast; "auto": where this machine runs it faster (train/precision.py)
    channels_last: bool = False
    deterministic: bool = False          # deterministic kernels; with it resume is bit-exact
    threads: int | None = None           # torch intra-op threads (None = torch's default)

    # bookkeeping
    progress: bool = True
    log_every: int = 10                  # steps between metrics.jsonl lines
    grid_every: float = 5.0              # kimg between sample grids (0 = only at the end)
    ckpt_every: float = 10.0             # kimg between checkpoints
    keep_last: int = 3                   # checkpoints kept besides the best
    eval_every: float = 0.0              # kimg between evaluations (0 = off)
    eval_n: int = 1000
    eval_metrics: list = field(default_factory=lambda: ["fid"])
    tensorboard: bool = False

    # divergence guard
    on_nan: str = "lower-lr"             # lower-lr: restore last good state and halve the LR; stop: raise
    nan_lr_factor: float = 0.5
    max_recoveries: int = 5
    guard_every: int = 50                # steps between weight checks and in-memory good snapshots

    # collapse guard (train/collapse.py): D wins outright while G draws saturated or identical images
    on_collapse: str = "restore"         # restore: last healthy snapshot, half the LR, stronger ADA; stop; off
    collapse_patience: int = 200         # consecutive collapsed-looking steps before acting

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> "TrainConfig":
        _check_types(self)

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ConfigError(f"TrainConfig.{name}: {what}, got {getattr(self, name)!r}")

        need(bool(self.model) and self.model.replace("_", "").replace("-", "").isalnum(), "model",
             "must be a model name such as mlp, dcgan or style")
        need(self.res is None or (self.res >= 8 and self.res & (self.res - 1) == 0), "res",
             "must be a power of two >= 8 (or null for the archive's resolution)")
        need(self.batch >= 1, "batch", "must be >= 1")
        need(32 <= self.guide_res <= 512, "guide_res", "must be in 32..512")
        for name in ("kimg", "minutes"):
            v = getattr(self, name)
            need(v is None or (math.isfinite(v) and v > 0), name, "must be a positive number or null")
        need(self.z_dim >= 1, "z_dim", "must be >= 1")
        need(self.loss in LOSSES, "loss", f"must be one of {', '.join(LOSSES)}")
        guide_weights = [f.name for f in dataclasses.fields(self) if f.name.startswith("guide_") and f.type == "float"]
        for name in ("r1", "gp", "cls_weight", *guide_weights, "ema_kimg", "ema_rampup", "grid_every", "ckpt_every",
                     "eval_every"):
            v = getattr(self, name)
            need(math.isfinite(v) and v >= 0, name, "must be a finite number >= 0")
        for name in ("lr_g", "lr_d"):
            need(math.isfinite(getattr(self, name)) and 0 < getattr(self, name) < 1, name, "must be in (0, 1)")
        for name in ("beta1", "beta2", "lr_rampdown"):
            need(0 <= getattr(self, name) < 1, name, "must be in [0, 1)")
        for name in ("r1_every", "d_steps", "log_every", "keep_last", "eval_n", "guard_every", "collapse_patience"):
            need(getattr(self, name) >= 1, name, "must be >= 1")
        need(self.max_recoveries >= 0, "max_recoveries", "must be >= 0")
        need(0 < self.nan_lr_factor < 1, "nan_lr_factor", "must be in (0, 1)")
        need(self.bf16 in (True, False, "auto"), "bf16", "must be true, false or auto")
        need(self.on_nan in ON_NAN, "on_nan", f"must be one of {', '.join(ON_NAN)}")
        need(self.on_collapse in ON_COLLAPSE, "on_collapse", f"must be one of {', '.join(ON_COLLAPSE)}")
        need(self.device in DEVICES or self.device.startswith("cuda:"), "device",
             "must be auto, cpu, cuda or cuda:N")
        need(self.threads is None or self.threads >= 1, "threads", "must be >= 1 or null")
        need(all(isinstance(m, str) for m in self.eval_metrics), "eval_metrics", "must be a list of metric names")
        need(self.name is None or ("/" not in self.name and self.name not in ("", ".", "..")), "name",
             "must be a plain folder name")
        return self

    def require_data(self) -> None:
        """Checks that only matter when training starts (a config file may omit the data)."""
        if not self.data:
            raise ConfigError("TrainConfig.data: the dataset archive is required (--data ARCHIVE)")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any], *, source: str = "config") -> "TrainConfig":
        if not isinstance(obj, dict):
            raise ConfigError(f"{source}: must be a mapping of field names to values")
        known = [f.name for f in dataclasses.fields(cls)]
        for key in obj:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{source}: unknown field {key!r}{hint}")
        return cls(**{k.replace("-", "_"): v for k, v in obj.items()})

    def replace(self, **changes: Any) -> "TrainConfig":
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        text = path.read_text()
        try:
            if path.suffix.lower() == ".json":
                obj = json.loads(text)
            else:
                import yaml

                obj = yaml.safe_load(text) or {}
        except Exception as e:  # yaml and json raise different error types; both mean "unreadable"
            raise ConfigError(f"{path}: unreadable {path.suffix.lstrip('.') or 'YAML'} ({e})".replace("\n", " ")) from None
        return cls.from_dict(obj, source=str(path))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        else:
            import yaml

            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path


def _check_types(cfg: TrainConfig) -> None:
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        allowed = _allowed_types(hints[f.name])
        if value is None and type(None) in allowed:
            continue
        if float in allowed and isinstance(value, int) and not isinstance(value, bool):
            setattr(cfg, f.name, float(value))  # YAML writes 10.0 as 10
            continue
        if isinstance(value, tuple) and list in allowed:
            setattr(cfg, f.name, list(value))
            continue
        if isinstance(value, bool) and bool not in allowed:
            ok = False
        else:
            ok = isinstance(value, tuple(t for t in allowed if t is not type(None)))
        if not ok:
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise ConfigError(f"TrainConfig.{f.name}: must be {names}, got {value!r}")


def _allowed_types(hint) -> tuple[type, ...]:
    args = typing.get_args(hint)
    if args:
        return tuple(typing.get_origin(a) or a for a in args)
    return (typing.get_origin(hint) or hint,)
