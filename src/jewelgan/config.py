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


def opt(default: Any = None, check: tuple[Callable[[Any], bool], str] | None = None, *, section: str,
        resumable: bool = False, factory: Callable[[], Any] | None = None):
    """A TrainConfig field: its section of a config file, its own validity check, and whether a resumed run
    may change it (budgets and bookkeeping may, the maths may not)."""
    meta = {"check": check, "resumable": resumable, "section": section}
    return field(default_factory=factory, metadata=meta) if factory else field(default=default, metadata=meta)


NONNEG, AT_LEAST_1, UNIT_OPEN, UNIT_HALF = _number(0), _number(1), _number(0, 1, open_low=True, open_high=True), \
    _number(0, 1, open_high=True)
POSITIVE_OR_NULL = (lambda v: v is None or (math.isfinite(v) and v > 0)), "must be a positive number or null"


@dataclass
class TrainConfig:
    """Everything that defines a training run. Budgets are in kimg (thousands of real images shown to D).
    Each field carries its section, its check (validate) and whether a resume may change it (RESUME_OVERRIDABLE).

    A config file groups the fields by section (`optimiser: {lr_g: ...}`), and code reads them the same way
    (cfg.optimiser.lr_g, a read-only Section); the flat form (cfg.lr_g, and the flat files of older run
    directories) stays for the model builders and old runs. A file may give only some fields: the rest take
    their defaults, so a preset or a partial config is just a shorter file."""

    # -- run: where the run lives and how it runs
    data: str = opt("", section="run")                                  # dataset archive folder
    out: str = opt("runs", resumable=True, section="run")               # parent folder of run directories
    name: str | None = opt(None, section="run")                         # run directory name; default NNNNN-model-res
    seed: int = opt(0, section="run")
    device: str = opt("auto", section="run")
    threads: int | None = opt(None, _number(1, null=True), resumable=True, section="run")  # torch intra-op threads
    deterministic: bool = opt(False, section="run")                     # deterministic kernels; with it resume is bit-exact

    # -- network: the networks
    model: str = opt("dcgan", section="network")                        # registry name: mlp, dcgan, style, ...
    res: int | None = opt(None, section="network")                      # training resolution; None = the archive's (smaller = downscaled)
    z_dim: int = opt(100, AT_LEAST_1, section="network")
    conditional: bool = opt(True, section="network")                    # condition on the archive's labels when it has any
    # learn the archive's alpha channel (G draws RGBA, D judges it): "auto" = when the archive has one
    # and the model's D can see it; stored resolved, so the run rebuilds the same network
    alpha: bool | str = opt("auto", ((lambda v: v in (True, False, "auto")), "must be true, false or auto"), section="network")
    model_args: dict = opt(factory=dict, section="network")             # builder-specific options (channels, depth, ...)
    # a trained generator to start G (and its EMA) from: a shipped model's name, a model folder or a run;
    # D starts fresh. Tensors whose shape differs here (another label set, RGB against RGBA) start fresh
    # too, so a shop's photos can start from the shipped studio model (train/warm_start.py)
    init_from: str | None = opt(None, section="network")

    # -- objective: the adversarial objective
    loss: str = opt("ns", _choice(LOSSES), section="objective")
    r1: float = opt(0.0, NONNEG, section="objective")                   # R1 gamma on real images (0 = off)
    r1_every: int = opt(1, AT_LEAST_1, section="objective")             # lazy regularisation interval in steps
    gp: float = opt(10.0, NONNEG, section="objective")                  # WGAN-GP lambda (used with loss=wgan-gp)
    cls_weight: float = opt(0.0, NONNEG, section="objective")           # auxiliary attribute classifier on D (AC-GAN): weight of its loss

    # -- guidance: G losses on a frozen ImageNet network (train/guidance.py, one entry each in guidance.TERMS)
    guide_fm: float = opt(0.0, NONNEG, section="guidance")              # feature matching over the batch
    guide_cfm: float = opt(0.0, NONNEG, section="guidance")             # the same feature matching per attribute value (conditional)
    guide_adv: float = opt(0.0, NONNEG, section="guidance")             # a second D, an MLP on those features (vision-aided)
    guide_fstd: float = opt(0.0, NONNEG, section="guidance")            # the fakes' per-channel spread of those features matched to the reals'
    guide_cfstd: float = opt(0.0, NONNEG, section="guidance")           # the same spread within each attribute value (conditional)
    guide_cls: float = opt(0.0, NONNEG, section="guidance")             # attribute classifiers on that network's features
    guide_colour: float = opt(0.0, NONNEG, section="guidance")          # per attribute value, the pixel-colour quantiles matched to the reals'
    guide_res: int = opt(64, _number(32, 512), section="guidance")      # input resolution of that network
    # how the per-value terms (cfm, colour) estimate the fakes' mean of a value: "batch" (this batch's fakes;
    # a value with one fake in the batch has that fake pulled onto the reals' mean, and a small category
    # collapses to one picture) or "running" (a running mean over recent batches: every fake of the value is
    # moved by the same gap, which shifts the value's fakes without drawing them together)
    guide_value_mean: str = opt("batch", _choice(("batch", "running")), section="guidance")

    # -- optimiser: optimisers and the weight average
    batch: int = opt(32, AT_LEAST_1, section="optimiser")               # global batch (split across ranks under torchrun)
    lr_g: float = opt(2e-4, UNIT_OPEN, section="optimiser")
    lr_d: float = opt(2e-4, UNIT_OPEN, section="optimiser")
    lr_rampdown: float = opt(0.0, UNIT_HALF, section="optimiser")       # last share of the budget over which both lrs fall to 0
    beta1: float = opt(0.5, UNIT_HALF, section="optimiser")
    beta2: float = opt(0.999, UNIT_HALF, section="optimiser")
    d_steps: int = opt(1, AT_LEAST_1, section="optimiser")              # D updates per G update
    ema_kimg: float = opt(10.0, NONNEG, section="optimiser")            # half-life of the G EMA in kimg (0 = no averaging)
    ema_rampup: float = opt(0.05, NONNEG, section="optimiser")          # half-life <= this share of images seen so far

    # -- augmentation: what D sees of the data
    augment: str = opt("", section="augmentation")                      # spec for jewelgan.data.augment.build_augment ("" = none)
    hflip: bool = opt(True, section="augmentation")                     # mirror training images (product shots are near-symmetric)
    # how evenly the reals (and with them the fakes' labels) are drawn across the category's values: 0 = in the
    # archive's proportions (epochs of a shuffled order), 0.5 = in proportion to the square root of each
    # value's count, 1 = every value equally often (train/data.py); an uneven catalogue's small category
    # gets more of D's and G's steps
    balance: float = opt(0.0, _number(0.0, 1.0), section="augmentation")

    # -- speed: precision and memory layout
    bf16: bool | str = opt(False, section="speed")                      # bf16 autocast; "auto": where this machine runs it faster
    channels_last: bool = opt(False, section="speed")

    # -- schedule: budget and bookkeeping
    kimg: float | None = opt(None, POSITIVE_OR_NULL, resumable=True, section="schedule")  # stop after this many thousand real images
    minutes: float | None = opt(None, POSITIVE_OR_NULL, resumable=True, section="schedule")  # or after this much training time
    progress: bool = opt(True, resumable=True, section="schedule")
    log_every: int = opt(10, AT_LEAST_1, resumable=True, section="schedule")  # steps between metrics.jsonl lines
    grid_every: float = opt(5.0, NONNEG, resumable=True, section="schedule")  # kimg between sample grids (0 = only at the end)
    ckpt_every: float = opt(10.0, NONNEG, resumable=True, section="schedule")  # kimg between checkpoints
    keep_last: int = opt(3, AT_LEAST_1, resumable=True, section="schedule")  # checkpoints kept besides the best
    eval_every: float = opt(0.0, NONNEG, resumable=True, section="schedule")  # kimg between evaluations (0 = off)
    eval_n: int = opt(1000, AT_LEAST_1, resumable=True, section="schedule")
    eval_metrics: list = opt(check=((lambda v: all(isinstance(m, str) for m in v)), "must be a list of metric names"),
                             resumable=True, factory=lambda: ["fid"], section="schedule")
    tensorboard: bool = opt(False, resumable=True, section="schedule")

    # -- guards: divergence and collapse guards (train/collapse.py)
    on_nan: str = opt("lower-lr", _choice(ON_NAN), resumable=True, section="guards")  # lower-lr: restore last good state, halve the LR
    nan_lr_factor: float = opt(0.5, UNIT_OPEN, section="guards")
    max_recoveries: int = opt(5, _number(0), resumable=True, section="guards")
    guard_every: int = opt(50, AT_LEAST_1, section="guards")            # steps between weight checks and in-memory good snapshots
    # collapse: D wins outright while G draws saturated or identical images
    on_collapse: str = opt("restore", _choice(ON_COLLAPSE), resumable=True, section="guards")  # restore, stop or off
    collapse_patience: int = opt(200, AT_LEAST_1, resumable=True, section="guards")  # consecutive collapsed-looking steps first
    # kimg between checks of the spread per attribute value (train/value_guard.py; 0 = off)
    value_check_every: float = opt(10.0, NONNEG, resumable=True, section="guards")

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ sections
    @property
    def run(self) -> Section:
        return Section(self, "run")

    @property
    def network(self) -> Section:
        return Section(self, "network")

    @property
    def objective(self) -> Section:
        return Section(self, "objective")

    @property
    def guidance(self) -> Section:
        return Section(self, "guidance")

    @property
    def optimiser(self) -> Section:
        return Section(self, "optimiser")

    @property
    def augmentation(self) -> Section:
        return Section(self, "augmentation")

    @property
    def speed(self) -> Section:
        return Section(self, "speed")

    @property
    def schedule(self) -> Section:
        return Section(self, "schedule")

    @property
    def guards(self) -> Section:
        return Section(self, "guards")

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
        """Flat {field: value} (what checkpoints and model folders store)."""
        return dataclasses.asdict(self)

    def to_sections(self) -> dict[str, dict[str, Any]]:
        """{section: {field: value}}, sections in declaration order (what config files hold)."""
        out: dict[str, dict[str, Any]] = {}
        flat = self.to_dict()
        for f in dataclasses.fields(self):
            out.setdefault(f.metadata["section"], {})[f.name] = flat[f.name]
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any], *, source: str = "config") -> "TrainConfig":
        """From flat fields, sections of fields, or a mix of both."""
        if not isinstance(obj, dict):
            raise ConfigError(f"{source}: must be a mapping of field names to values")
        flat = _flatten_sections(obj, source)
        known = [f.name for f in dataclasses.fields(cls)]
        for key in flat:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{source}: unknown field {key!r}{hint}")
        return cls(**flat)

    def replace(self, **changes: Any) -> "TrainConfig":
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        """A config file, the fields it leaves out at their defaults."""
        return cls.from_dict(cls.read_fields(path), source=str(path))

    @classmethod
    def read_fields(cls, path: str | Path) -> dict[str, Any]:
        """Only the fields a config file sets, flat ({field: value}), checked against TrainConfig: what a
        file composes over a preset with."""
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
        if not isinstance(obj, dict):
            raise ConfigError(f"{path}: must be a mapping of field names (or sections of them) to values")
        fields = _flatten_sections(obj, str(path))
        cls.from_dict(fields, source=str(path))  # unknown fields and bad values are reported here
        return fields

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        else:
            import yaml

            path.write_text(yaml.safe_dump(self.to_sections(), sort_keys=False))
        return path


class Section:
    """One section of a TrainConfig, read as an object: cfg.optimiser.lr_g is cfg.lr_g. Only the section's own
    fields read, so code that takes a section names what it depends on, and a field looked for in the wrong
    section fails at once instead of reading something else. Read-only: a config changes through replace()."""

    __slots__ = ("_config", "_name")

    def __init__(self, config: TrainConfig, name: str):
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "_name", name)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):  # a slot not yet set (copy, pickle) must not recurse through here
            raise AttributeError(key)
        if key in SECTIONS[self._name]:
            return getattr(self._config, key)
        where = f"; it is in section {SECTION_OF[key]!r}" if key in SECTION_OF else ""
        raise AttributeError(f"TrainConfig section {self._name!r} has no field {key!r}{where}")

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"TrainConfig.{self._name} is read-only (change a config with TrainConfig.replace)")

    def __reduce__(self):
        return Section, (self._config, self._name)

    def __dir__(self) -> list[str]:
        return list(SECTIONS[self._name])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Section) and self._name == other._name and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # equal by value, and the config it reads is mutable

    def __repr__(self) -> str:
        return f"{self._name}({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self._config, k) for k in SECTIONS[self._name]}


def _flatten_sections(obj: dict[str, Any], source: str) -> dict[str, Any]:
    """{section: {field: v}} and {field: v} entries -> {field: v}; a field under the wrong section is an error."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        key = str(key).replace("-", "_")
        if key in SECTIONS and isinstance(value, dict):
            for name, v in value.items():
                name = str(name).replace("-", "_")
                if name in SECTION_OF and SECTION_OF[name] != key:
                    raise ConfigError(f"{source}: {key}.{name}: {name!r} belongs in section {SECTION_OF[name]!r}")
                if name not in SECTION_OF:
                    close = difflib.get_close_matches(name, SECTIONS[key], n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise ConfigError(f"{source}: unknown field {key}.{name}{hint}")
                flat[name] = v
        else:
            flat[key] = value
    return flat


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
# field -> its section, and section -> its fields, from the declarations
SECTION_OF = {f.name: f.metadata["section"] for f in dataclasses.fields(TrainConfig)}
SECTIONS: dict[str, list[str]] = {}
for _name, _section in SECTION_OF.items():
    SECTIONS.setdefault(_section, []).append(_name)
