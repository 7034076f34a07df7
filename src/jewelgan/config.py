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
from typing import Any, Callable

LOSSES = ("ns", "hinge", "wgan-gp")
ON_NAN = ("lower-lr", "stop")
ON_COLLAPSE = ("restore", "stop", "off")
DEVICES = ("auto", "cpu", "cuda")

class ConfigError(ValueError):
    """A config value is missing, of the wrong type or out of range."""


def _number(low: float | None = None, high: float | None = None, *, open_low: bool = False, open_high: bool = False,
            null: bool = False) -> tuple[Callable[[Any], bool], str]:
    """A check of a numeric field and the phrase that says what it wants."""
    def ok(v) -> bool:
        if v is None:
            return null
        return (math.isfinite(v) and (low is None or (v > low if open_low else v >= low))
                and (high is None or (v < high if open_high else v <= high)))
    if low is not None and high is not None:
        what = f"must be in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    elif low == 0 and not open_low:
        what = "must be a finite number >= 0"
    else:
        what = f"must be {'>' if open_low else '>='} {low:g}"
    return ok, what + (" or null" if null else "")


def _choice(options: tuple[str, ...]) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in options), f"must be one of {', '.join(options)}"


def opt(default: Any = None, check: tuple[Callable[[Any], bool], str] | None = None, *, resumable: bool = False,
        factory: Callable[[], Any] | None = None):
    """A TrainConfig field with its own validity check and whether a resumed run may change it (budgets
    and bookkeeping may, the maths may not)."""
    meta = {"check": check, "resumable": resumable}
    return field(default_factory=factory, metadata=meta) if factory else field(default=default, metadata=meta)


NONNEG, AT_LEAST_1, UNIT_OPEN, UNIT_HALF = _number(0), _number(1), _number(0, 1, open_low=True, open_high=True), \
    _number(0, 1, open_high=True)
POSITIVE_OR_NULL = (lambda v: v is None or (math.isfinite(v) and v > 0)), "must be a positive number or null"


@dataclass
class TrainConfig:
    """Everything that defines a training run. Budgets are in kimg (thousands of real images shown to D).
    Each field carries its check (validate) and whether a resume may change it (RESUME_OVERRIDABLE)."""

    data: str = ""                                     # dataset archive folder
    model: str = "dcgan"                               # registry name: mlp, dcgan, style, ...
    res: int | None = None                             # training resolution; None = the archive's (smaller = downscaled)
    batch: int = opt(32, AT_LEAST_1)                   # global batch (split across ranks under torchrun)
    kimg: float | None = opt(None, POSITIVE_OR_NULL, resumable=True)     # stop after this many thousand real images
    minutes: float | None = opt(None, POSITIVE_OR_NULL, resumable=True)  # or after this much training time
    out: str = opt("runs", resumable=True)             # parent folder of run directories
    name: str | None = None                            # run directory name; default NNNNN-model-res
    seed: int = 0

    # model
    z_dim: int = opt(100, AT_LEAST_1)
    conditional: bool = True                           # condition on the archive's labels when it has any
    # learn the archive's alpha channel (G draws RGBA, D judges it): "auto" = when the archive has one
    # and the model's D can see it; stored resolved, so the run rebuilds the same network
    alpha: bool | str = opt("auto", ((lambda v: v in (True, False, "auto")), "must be true, false or auto"))
    model_args: dict = opt(factory=dict)               # builder-specific options (channels, depth, ...)

    # objective and optimiser (the seed's Adam defaults)
    loss: str = opt("ns", _choice(LOSSES))
    r1: float = opt(0.0, NONNEG)                       # R1 gamma on real images (0 = off)
    r1_every: int = opt(1, AT_LEAST_1)                 # lazy regularisation interval in steps
    gp: float = opt(10.0, NONNEG)                      # WGAN-GP lambda (used with loss=wgan-gp)
    cls_weight: float = opt(0.0, NONNEG)               # auxiliary attribute classifier on D (AC-GAN): weight of its loss
    # G losses on a frozen ImageNet network (train/guidance.py, one entry each in guidance.TERMS)
    guide_fm: float = opt(0.0, NONNEG)                 # feature matching over the batch
    guide_cfm: float = opt(0.0, NONNEG)                # the same feature matching per attribute value (conditional)
    guide_adv: float = opt(0.0, NONNEG)                # a second D, an MLP on those features (vision-aided)
    guide_fstd: float = opt(0.0, NONNEG)               # the fakes' per-channel spread of those features matched to the reals'
    guide_cls: float = opt(0.0, NONNEG)                # attribute classifiers on that network's features
    guide_colour: float = opt(0.0, NONNEG)             # per attribute value, the pixel-colour quantiles matched to the reals'
    guide_res: int = opt(64, _number(32, 512))         # input resolution of that network
    lr_g: float = opt(2e-4, UNIT_OPEN)
    lr_d: float = opt(2e-4, UNIT_OPEN)
    lr_rampdown: float = opt(0.0, UNIT_HALF)           # last share of the budget over which both lrs fall to 0
    beta1: float = opt(0.5, UNIT_HALF)
    beta2: float = opt(0.999, UNIT_HALF)
    d_steps: int = opt(1, AT_LEAST_1)                  # D updates per G update
    ema_kimg: float = opt(10.0, NONNEG)                # half-life of the G EMA in kimg (0 = no averaging)
    ema_rampup: float = opt(0.05, NONNEG)              # half-life <= this share of images seen so far
    augment: str = ""                                  # spec for jewelgan.data.augment.build_augment ("" = none)
    hflip: bool = True                                 # mirror training images (product shots are near-symmetric)

    # speed and reproducibility
    device: str = "auto"
    bf16: bool | str = False                           # bf16 autocast; "auto": where this machine runs it faster
    channels_last: bool = False
    deterministic: bool = False                        # deterministic kernels; with it resume is bit-exact
    threads: int | None = opt(None, _number(1, null=True), resumable=True)  # torch intra-op threads

    # bookkeeping
    progress: bool = opt(True, resumable=True)
    log_every: int = opt(10, AT_LEAST_1, resumable=True)         # steps between metrics.jsonl lines
    grid_every: float = opt(5.0, NONNEG, resumable=True)         # kimg between sample grids (0 = only at the end)
    ckpt_every: float = opt(10.0, NONNEG, resumable=True)        # kimg between checkpoints
    keep_last: int = opt(3, AT_LEAST_1, resumable=True)          # checkpoints kept besides the best
    eval_every: float = opt(0.0, NONNEG, resumable=True)         # kimg between evaluations (0 = off)
    eval_n: int = opt(1000, AT_LEAST_1, resumable=True)
    eval_metrics: list = opt(check=((lambda v: all(isinstance(m, str) for m in v)), "must be a list of metric names"),
                             resumable=True, factory=lambda: ["fid"])
    tensorboard: bool = opt(False, resumable=True)

    # divergence guard
    on_nan: str = opt("lower-lr", _choice(ON_NAN), resumable=True)  # lower-lr: restore last good state, halve the LR
    nan_lr_factor: float = opt(0.5, UNIT_OPEN)
    max_recoveries: int = opt(5, _number(0), resumable=True)
    guard_every: int = opt(50, AT_LEAST_1)             # steps between weight checks and in-memory good snapshots

    # collapse guard (train/collapse.py): D wins outright while G draws saturated or identical images
    on_collapse: str = opt("restore", _choice(ON_COLLAPSE), resumable=True)  # restore, stop or off
    collapse_patience: int = opt(200, AT_LEAST_1, resumable=True)  # consecutive collapsed-looking steps first

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> "TrainConfig":
        _check_types(self)

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ConfigError(f"TrainConfig.{name}: {what}, got {getattr(self, name)!r}")

        for f in dataclasses.fields(self):
            if f.metadata.get("check"):
                ok, what = f.metadata["check"]
                need(ok(getattr(self, f.name)), f.name, what)
        need(bool(self.model) and self.model.replace("_", "").replace("-", "").isalnum(), "model",
             "must be a model name such as mlp, dcgan or style")
        need(self.res is None or (self.res >= 8 and self.res & (self.res - 1) == 0), "res",
             "must be a power of two >= 8 (or null for the archive's resolution)")
        need(self.bf16 in (True, False, "auto"), "bf16", "must be true, false or auto")
        need(self.device in DEVICES or self.device.startswith("cuda:"), "device",
             "must be auto, cpu, cuda or cuda:N")
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


# fields that may change when a run is resumed: budgets and bookkeeping, never the maths
RESUME_OVERRIDABLE = frozenset(f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("resumable"))
