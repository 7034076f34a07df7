"""CLI: `jewelgan train`. Parses flags into a TrainConfig and calls jewelgan.train."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from jewelgan.cli.app import app, fail


def _parse_set(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise fail(f"--set {item!r} must look like field=value (e.g. --set model_args={{ngf: 32}})")
        key, value = item.split("=", 1)
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise fail(f"--set {key}: value is not valid YAML ({str(e).splitlines()[0]})")
    return out


def _default_recipe(data: str | None, device: str | None) -> dict:
    """The recipe jewelgan.train.recipe recommends for this archive and device, said on the console."""
    import torch

    from jewelgan.data.archive import Archive
    from jewelgan.train.recipe import recommend

    if not data:
        return {}  # the missing --data is reported by the trainer
    dev = device if device not in (None, "auto") else ("cuda" if torch.cuda.is_available() else "cpu")
    recipe = recommend(Archive(data), dev)
    typer.echo(f"recipe: {recipe.summary}\n  why: {recipe.why}\n  (name --model or --preset to choose yourself)")
    return recipe.fields


def _auto_resume_target(cfg) -> Path | None:
    """OUT/NAME when it holds a complete checkpoint. A folder left by a start that died before its first
    checkpoint is moved aside (by rank 0 only; nothing is deleted) so the run can start again there."""
    import os
    import time

    from jewelgan.runs.rundir import RunDir

    run = Path(cfg.out) / cfg.name
    if run.is_dir() and RunDir(run).latest_checkpoint() is not None:
        return run
    if run.is_dir() and any(run.iterdir()) and os.environ.get("RANK", "0") == "0":
        aside = run.with_name(f"{run.name}.no-checkpoint-{time.strftime('%Y%m%d-%H%M%S')}")
        run.rename(aside)
        typer.echo(f"{run} had no checkpoint yet: moved it to {aside} and starting again", err=True)
    return None


@app.command("train")
def train_cmd(
    data: Optional[str] = typer.Option(None, "--data", help="Dataset archive folder."),
    model: Optional[str] = typer.Option(None, "--model", help="mlp, dcgan, style (see the registry) or auto "
                                        "(default without --preset/--config: the recipe measured best for the "
                                        "archive and device, printed with the reason)."),
    res: Optional[int] = typer.Option(None, "--res", help="Training resolution (default: the archive's)."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Global batch size."),
    kimg: Optional[float] = typer.Option(None, "--kimg", help="Budget: thousands of real images shown to D."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Budget: minutes of training."),
    out: Optional[str] = typer.Option(None, "--out", help="Parent folder of run directories (default runs)."),
    name: Optional[str] = typer.Option(None, "--name", help="Run directory name (default NNNNN-model-res)."),
    loss: Optional[str] = typer.Option(None, "--loss", help="ns (non-saturating), hinge or wgan-gp."),
    r1: Optional[float] = typer.Option(None, "--r1", help="R1 penalty gamma (0 = off)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate for both G and D."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    augment: Optional[str] = typer.Option(None, "--augment", help="e.g. diffaug:color,translation,cutout or ada."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run directory exactly."),
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Start G from a trained generator: a shipped "
                                            "model's name (default64), a model folder or a run; D starts fresh. "
                                            "Same model and res; layers that differ (another label set) start fresh."),
    auto_resume: bool = typer.Option(False, "--auto-resume", help="With --name: continue OUT/NAME from its last "
                                     "checkpoint when it has one, else start it. For commands that are rerun as "
                                     "they are: torchrun --max-restarts, SLURM requeues."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML or JSON TrainConfig; flags override it."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Style-model preset (cpu-64, gpu-128, gpu-256, "
                                         "gpu-512; see docs/configs.md); flags override it."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help="bf16 autocast."),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last"),
    deterministic: Optional[bool] = typer.Option(None, "--deterministic/--no-deterministic"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch."),
    eval_every: Optional[float] = typer.Option(None, "--eval-every", help="Evaluate every this many kimg."),
    ckpt_every: Optional[float] = typer.Option(None, "--ckpt-every", help="Checkpoint every this many kimg."),
    grid_every: Optional[float] = typer.Option(None, "--grid-every", help="Sample grid every this many kimg."),
    keep_last: Optional[int] = typer.Option(None, "--keep-last", help="Checkpoints to keep (besides the best)."),
    on_nan: Optional[str] = typer.Option(None, "--on-nan", help="lower-lr (restore and continue) or stop."),
    on_collapse: Optional[str] = typer.Option(None, "--on-collapse", help="When D wins outright and G draws saturated "
                                              "or identical images: restore (last healthy state, half the LR, "
                                              "stronger ADA), stop, or off."),
    tensorboard: Optional[bool] = typer.Option(None, "--tensorboard/--no-tensorboard"),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress"),
    set_: List[str] = typer.Option([], "--set", help="Any TrainConfig field: --set ema_kimg=5 --set model_args={ngf: 32}"),
) -> None:
    """Train a GAN on a dataset archive; writes a run directory (config, checkpoints, samples, metrics)."""
    from jewelgan.config import ConfigError, TrainConfig
    from jewelgan.data.archive import ArchiveError
    from jewelgan.models.registry import UnknownModelError
    from jewelgan.train import DivergenceError, train
    from jewelgan.runs.checkpoint import CheckpointError

    flags = dict(data=data, model=model, res=res, batch=batch, kimg=kimg, minutes=minutes, out=out, name=name,
                 loss=loss, r1=r1, seed=seed, augment=augment, bf16=bf16, channels_last=channels_last,
                 deterministic=deterministic, device=device, threads=threads, eval_every=eval_every,
                 ckpt_every=ckpt_every, grid_every=grid_every, keep_last=keep_last, on_nan=on_nan, on_collapse=on_collapse,
                 tensorboard=tensorboard, progress=progress, init_from=init_from)
    overrides = {k: v for k, v in flags.items() if v is not None}
    if lr is not None:
        overrides.update(lr_g=lr, lr_d=lr)
    overrides.update(_parse_set(set_))
    if auto_resume and (resume is not None or name is None):
        raise fail("--auto-resume needs --name (the run directory to continue) and no --resume", 2)
    try:
        if resume is not None:
            if preset is not None:
                raise fail("--preset cannot be combined with --resume (the run's own config is used)")
            if config is not None:
                raise fail("--config cannot be combined with --resume (the run's own config is used)")
            run_dir = train(resume=resume, overrides=overrides)
        else:
            # layers, each over the one before: defaults (or the default recipe), the preset, the config file's
            # own fields, then the flags
            file_fields = TrainConfig.read_fields(config) if config is not None else {}
            base = TrainConfig()
            if overrides.get("model") == "auto" or (model is None and preset is None and config is None):
                overrides.pop("model", None)
                base.replace(**overrides)  # a bad flag is reported before the archive is opened
                base = base.replace(**_default_recipe(data, device))
            if preset is not None:  # the preset's architecture and training settings
                from jewelgan.models.presets import preset_config

                base = base.replace(**preset_config(preset))
            base = base.replace(**file_fields)
            if "kimg" in overrides and "minutes" not in overrides:
                overrides["minutes"] = None  # an explicit --kimg replaces a config file's time budget
            if "minutes" in overrides and "kimg" not in overrides:
                overrides["kimg"] = None
            cfg = base.replace(**overrides)
            run_dir = train(cfg, resume=_auto_resume_target(cfg) if auto_resume else None)
    except (ConfigError, ArchiveError, UnknownModelError, CheckpointError, DivergenceError, FileExistsError,
            ValueError) as e:
        raise fail(str(e))
    typer.echo(f"run: {run_dir}")
