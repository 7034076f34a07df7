"""Checkpoints: safetensors for every tensor, JSON for everything else, written atomically.

Layout of one checkpoint (a folder under RUN/checkpoints/):
    step-000001234/
        G.safetensors  G_ema.safetensors  D.safetensors   module state_dicts (weights and buffers)
        augment.safetensors                               augmentation state (ADA's p), when it has any
        optim.safetensors                                 optimiser tensors, keys "G/<param>/<name>"
        state.json                                        step, config, RNG states, sampler position,
                                                          optimiser scalars and param groups, guard state
A checkpoint is filled in a hidden temp folder, every file fsynced, then renamed into place: a kill
at any moment leaves either the previous set of checkpoints or the new one, never half of one.
Nothing is ever unpickled: the optimiser state is split into tensors and JSON and rebuilt on load.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from jewelgan.atomic import fsync_dir, write_durable
from jewelgan.formats import read_tagged_json

FORMAT = "jewelgan-checkpoint"
VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d{9})$")


class CheckpointError(Exception):
    """A checkpoint is missing, incomplete, non-finite or does not match the model."""


@dataclass
class Checkpoint:
    path: Path
    state: dict                                  # the parsed state.json

    @property
    def step(self) -> int:
        return int(self.state["step"])

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        f = self.path / f"{name}.safetensors"
        if not f.is_file():
            raise CheckpointError(f"{f}: missing")
        return st_load(f.read_bytes())

    def has(self, name: str) -> bool:
        return (self.path / f"{name}.safetensors").is_file()

    def load_module(self, name: str, module: nn.Module) -> None:
        try:
            module.load_state_dict(self.tensors(name))
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0:2]
            raise CheckpointError(f"{self.path}/{name}.safetensors does not fit the model: {' '.join(first)}") from None

    def load_optimizer(self, name: str, opt: torch.optim.Optimizer) -> None:
        flat = self.tensors("optim")
        opt.load_state_dict(unflatten_optimizer(name, flat, self.state["optim"][name]))


# ---------------------------------------------------------------------------- optimiser state
def flatten_optimizer(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser state_dict into tensors (for safetensors) and JSON-able rest."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{name}/{pid}/{key}"] = value.detach().contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def unflatten_optimizer(name: str, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    prefix = f"{name}/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, k = key[len(prefix):].split("/", 1)
            state.setdefault(int(pid), {})[k] = value
    for pid, extra in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(extra)
    return {"state": state, "param_groups": meta["param_groups"]}


# ---------------------------------------------------------------------------- writing
def _module_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    # contiguous() also turns channels_last weights back into the standard layout on disk
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def _check_finite(name: str, tensors: dict[str, torch.Tensor]) -> None:
    for key, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"refusing to write a checkpoint: {name}.{key} holds NaN or inf")


def checkpoint_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(run_dir: str | Path, step: int, modules: dict[str, nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], state: dict, *,
                    keep_last: int = 3, best_step: int | None = None) -> Path:
    """Write RUN/checkpoints/step-<step>/ atomically and prune old ones (keeping the last K and the best).

    Raises CheckpointError, writing nothing, if any floating-point tensor is not finite.
    """
    root = checkpoint_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    for name, module in modules.items():
        if module is None:
            continue
        tensors = _module_tensors(module)
        if not tensors:
            continue
        _check_finite(name, tensors)
        files[f"{name}.safetensors"] = st_save(tensors)
    optim_tensors: dict[str, torch.Tensor] = {}
    optim_meta: dict[str, dict] = {}
    for name, opt in optimizers.items():
        t, meta = flatten_optimizer(name, opt)
        _check_finite(f"optim.{name}", t)
        optim_tensors.update(t)
        optim_meta[name] = meta
    files["optim.safetensors"] = st_save(optim_tensors)
    full_state = {"format": FORMAT, "version": VERSION, **state, "step": int(step), "optim": optim_meta,
                  "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    files["state.json"] = (json.dumps(full_state, indent=1) + "\n").encode()

    final = root / f"step-{step:09d}"
    tmp = root / f".tmp-step-{step:09d}-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir()
    try:
        for fname, data in files.items():  # state.json last: its presence marks a complete write
            write_durable(tmp / fname, data)
        fsync_dir(tmp)
        _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(root)
    prune(run_dir, keep_last, best_step)
    return final


def _publish(tmp: Path, final: Path) -> None:
    """Rename tmp onto final; an existing final (a re-save after a rewind) is moved aside first."""
    old = None
    if final.exists():
        old = final.parent / f".old-{final.name}-{time.time_ns()}"
        os.rename(final, old)
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def prune(run_dir: str | Path, keep_last: int, best_step: int | None = None) -> None:
    root = checkpoint_root(run_dir)
    ckpts = list_checkpoints(run_dir)
    keep = {p for p in ckpts[-keep_last:]} if keep_last > 0 else set()
    for p in ckpts:
        if p not in keep and (best_step is None or _step_of(p) != best_step):
            shutil.rmtree(p, ignore_errors=True)
    # leftovers of writes killed half-way (only one process writes a run's checkpoints)
    for p in root.iterdir():
        if p.name.startswith((".tmp-step-", ".old-")) and f"-{os.getpid()}-" not in p.name:
            shutil.rmtree(p, ignore_errors=True)


def set_aside_after(run_dir: str | Path, step: int) -> list[Path]:
    """Rename the checkpoints after `step` to collapsed-step-N (kept for a look, never resumed from): the
    collapse guard went back to `step`, and a resume must not pick up the collapsed trajectory."""
    moved = []
    for p in list_checkpoints(run_dir):
        if _step_of(p) > step:
            target = p.with_name(f"collapsed-{p.name}")
            if target.exists():
                shutil.rmtree(target)
            os.rename(p, target)
            moved.append(target)
    return moved


# ---------------------------------------------------------------------------- reading
def _step_of(path: Path) -> int:
    return int(_STEP_DIR.match(path.name).group(1))


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints (those with state.json), oldest first."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / "state.json").is_file()]
    return sorted(found, key=_step_of)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def open_checkpoint(path: str | Path) -> Checkpoint:
    """Open a checkpoint folder, or the latest checkpoint of a run directory."""
    path = Path(path)
    if (path / "checkpoints").is_dir() or (path / "config.yaml").is_file():
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(f"{path}: run directory has no complete checkpoint yet")
        path = latest
    state_file = path / "state.json"
    if not state_file.is_file():
        raise CheckpointError(f"{path}: not a checkpoint (state.json missing)")
    state = read_tagged_json(state_file, FORMAT, VERSION, CheckpointError)
    return Checkpoint(path, state)
