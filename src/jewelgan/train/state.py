"""Training state that is not a module: RNG states as JSON, in-memory snapshots for the divergence guard."""

from __future__ import annotations

import base64
import copy
import random

import numpy as np
import torch
from torch import nn


def rng_state() -> dict:
    """torch (CPU and CUDA), numpy and python RNG states, JSON-serialisable."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    out = {
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()]
    return out


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(state["torch"])), dtype=torch.uint8))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        states = [torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8) for s in state["cuda"]]
        torch.cuda.set_rng_state_all(states[: torch.cuda.device_count()])


def seed_step(seed: int, step: int, rank: int = 0) -> None:
    """Reseed every global RNG from (seed, step, rank): each step's randomness (latents, augmentation,
    anything a plug-in draws from the global RNGs) is then a pure function of the step, which is what
    makes a resumed run identical to an uninterrupted one."""
    s = (seed * 1_000_003 + step * 9_176 + rank * 7_919_993 + 17) % (2**63 - 1)
    torch.manual_seed(s)
    np.random.seed(s % (2**32))
    random.seed(s)


def all_finite(*modules: nn.Module | None, optimizers=()) -> bool:
    for m in modules:
        if m is None:
            continue
        for t in list(m.parameters()) + list(m.buffers()):
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                return False
    for opt in optimizers:
        for st in opt.state.values():
            for v in st.values():
                if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all()):
                    return False
    return True


def match_param_layouts(opt: torch.optim.Optimizer) -> None:
    """Give every per-parameter state tensor (Adam's moments) its parameter's memory layout. A checkpoint
    stores them contiguous, and fused Adam updates a channels_last parameter with contiguous moments to other
    values than with channels_last ones: without this, a resumed channels_last run left the uninterrupted one
    at its first step."""
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p, {})
            for key, v in state.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    state[key] = torch.empty_strided(p.shape, p.stride(), dtype=v.dtype, device=v.device).copy_(v)


class Snapshot:
    """A copy of everything the optimiser steps change, kept in memory as the divergence guard's last good state."""

    def __init__(self, step: int, modules: dict[str, nn.Module | None], optimizers: dict[str, torch.optim.Optimizer]):
        self.step = step
        self.modules = {k: copy.deepcopy(m.state_dict()) for k, m in modules.items() if m is not None}
        self.optimizers = {k: copy.deepcopy(o.state_dict()) for k, o in optimizers.items()}

    def restore(self, modules: dict[str, nn.Module | None], optimizers: dict[str, torch.optim.Optimizer]) -> int:
        for k, sd in self.modules.items():
            modules[k].load_state_dict(sd)
        for k, sd in self.optimizers.items():
            optimizers[k].load_state_dict(copy.deepcopy(sd))
        return self.step
