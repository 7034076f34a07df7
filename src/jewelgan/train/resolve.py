"""A run's config made concrete before anything is built: merged with a resumed run's saved config, and
every value left to be decided at start (the archive's resolution, a preset's model_args, `bf16: auto`,
`alpha: auto`) decided once and stored, so the saved config rebuilds the same networks and maths wherever
the run is resumed.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from jewelgan.config import RESUME_OVERRIDABLE, ConfigError, TrainConfig
from jewelgan.data.archive import Archive
from jewelgan.models import resolved_model_args, sees_alpha
from jewelgan.runs import checkpoint as ckpt_mod
from jewelgan.runs.rundir import lock_run_dir
from jewelgan.train import distributed as dist_mod
from jewelgan.train.precision import resolve_bf16


def open_resume(run_dir: Path, given: TrainConfig | None, overrides: dict
                ) -> tuple[ckpt_mod.Checkpoint, TrainConfig, object | None]:
    """A run to resume: its latest checkpoint, its saved config merged with the given one and the overrides,
    and the run directory's lock (taken by rank 0, which alone writes the run; None elsewhere). A run that
    cannot be resumed is a ConfigError, and the lock is given up again."""
    # locked before reading: nobody else may be pruning its checkpoints meanwhile
    lock = lock_run_dir(run_dir) if os.environ.get("RANK", "0") == "0" and run_dir.is_dir() else None
    try:
        try:
            ck = ckpt_mod.open_checkpoint(run_dir)
        except ckpt_mod.CheckpointError as e:
            raise ConfigError(f"--resume: {e}") from None
        return ck, merge_resume(TrainConfig.from_dict(ck.state["config"]), given, overrides), lock
    except BaseException:
        if lock is not None:
            lock.close()
        raise


def merge_resume(saved: TrainConfig, given: TrainConfig | None, overrides: dict) -> TrainConfig:
    """The saved config with the changes a resume may make: budgets and bookkeeping (RESUME_OVERRIDABLE) and
    the archive's path; any other difference is a ConfigError."""
    changes = dict(overrides)
    if given is not None:
        model = given.network.model
        if model == saved.network.model:  # a preset name and its written-out settings are the same config
            given = given.replace(model_args=resolved_model_args(model, given.replace(res=saved.network.res)))
        base = saved.to_dict()
        # a field left to be resolved at start (res None = the archive's, "auto") matches what it resolved to
        changes.update({k: v for k, v in given.to_dict().items()
                        if v != base[k] and k not in changes and v is not None and v != "auto"})
        if not given.run.data:
            changes.pop("data", None)
    for key in ("bf16", "alpha"):  # "auto" and what it resolved to are the same config too
        if changes.get(key) == "auto":
            changes[key] = getattr(saved, key)
    for k, v in changes.items():
        if k not in RESUME_OVERRIDABLE and k != "data" and v != getattr(saved, k):
            raise ConfigError(f"TrainConfig.{k}: cannot change from {getattr(saved, k)!r} to {v!r} when resuming "
                              f"(only budgets and bookkeeping may change: {', '.join(sorted(RESUME_OVERRIDABLE))})")
    return saved.replace(**changes)


def start_runtime(run) -> tuple[torch.device, dist_mod.DistInfo]:
    """Apply a config's run section to this process (deterministic kernels, threads); join torchrun's process
    group when there is one. Returns this rank's device and its place in the group."""
    if run.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    if run.threads:
        torch.set_num_threads(run.threads)
    dev = run.device if run.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"TrainConfig.device: {dev!r} requested but CUDA is not available")
    dist = dist_mod.init_from_env(torch.device(dev).type)
    if dist.enabled and dev == "cuda":
        dev = f"cuda:{dist.local_rank}"
    return torch.device(dev), dist


def resolve_config(cfg: TrainConfig, archive: Archive, device: torch.device) -> TrainConfig:
    """cfg with res, model_args (presets written out), bf16 and alpha decided for this archive and machine."""
    res = cfg.network.res or archive.resolution
    if res > archive.resolution or archive.resolution % res:
        raise ConfigError(f"TrainConfig.res: {res} px cannot be made from the archive's {archive.resolution} px")
    cfg = cfg.replace(res=res, model_args=resolved_model_args(cfg.network.model, cfg.replace(res=res)))
    if cfg.speed.bf16 == "auto":
        cfg = cfg.replace(bf16=resolve_bf16("auto", device))
    return _resolve_alpha(cfg, archive)


def _resolve_alpha(cfg: TrainConfig, archive: Archive) -> TrainConfig:
    model, alpha = cfg.network.model, cfg.network.alpha
    if alpha == "auto":
        return cfg.replace(alpha=archive.has_alpha and sees_alpha(model, cfg))
    if alpha and not archive.has_alpha:
        raise ConfigError(f"TrainConfig.alpha: {cfg.run.data} has no alpha channel (studio renders have one; "
                          "`jewelgan prepare --alpha auto` keys it from a plain backdrop), or set alpha: false")
    if alpha and not sees_alpha(model, cfg):
        raise ConfigError(f"TrainConfig.alpha: this {model} configuration cannot learn alpha (its discriminator "
                          "sees RGB only); set alpha: false")
    return cfg


def check_same_archive(state: dict, archive: Archive, data: str) -> None:
    """A resumed run must train on the archive it was trained on (its content, wherever it now lies)."""
    saved_hash = state.get("archive", {}).get("content_hash")
    if saved_hash and saved_hash != archive.content_hash:
        raise ConfigError(f"TrainConfig.data: {data} is not the archive this run was trained on "
                          f"(content hash {archive.content_hash} != {saved_hash})")
