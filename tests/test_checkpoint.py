"""Checkpoints: safetensors + JSON round trips, atomic writes under failures and real kills, pruning."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch import nn

from jewelgan.runs import checkpoint as ck


def _model_and_adam(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2, betas=(0.5, 0.999))
    return m, opt


def _train(m, opt, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        loss = m(torch.randn(16, 4, generator=g)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_round_trip_continues_optimisation_identically(tmp_path):
    m, opt = _model_and_adam()
    _train(m, opt, 3)
    path = ck.save_checkpoint(tmp_path, 3, {"G": m}, {"G": opt}, {"note": "x"})
    assert sorted(p.name for p in path.iterdir()) == ["G.safetensors", "optim.safetensors", "state.json"]
    m2, opt2 = _model_and_adam(seed=5)
    c = ck.open_checkpoint(tmp_path)  # a run dir resolves to its latest checkpoint
    c.load_module("G", m2)
    c.load_optimizer("G", opt2)
    assert c.step == 3 and c.state["note"] == "x" and c.state["format"] == "jewelgan-checkpoint"
    _train(m, opt, 2, seed=7)
    _train(m2, opt2, 2, seed=7)
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    # nothing pickled: the optimiser's scalars and groups are plain JSON
    assert json.loads((path / "state.json").read_text())["optim"]["G"]["param_groups"][0]["betas"] == [0.5, 0.999]


def test_wrong_model_gives_clear_error(tmp_path):
    m, opt = _model_and_adam()
    ck.save_checkpoint(tmp_path, 1, {"G": m}, {}, {})
    with pytest.raises(ck.CheckpointError, match="G.safetensors does not fit the model"):
        ck.open_checkpoint(tmp_path).load_module("G", nn.Linear(4, 1))
    with pytest.raises(ck.CheckpointError, match="not a checkpoint"):
        ck.open_checkpoint(tmp_path / "checkpoints")


def test_non_finite_state_is_never_written(tmp_path):
    m, opt = _model_and_adam()
    ck.save_checkpoint(tmp_path, 1, {"G": m}, {"G": opt}, {})
    with torch.no_grad():
        m[0].weight[0, 0] = float("nan")
    with pytest.raises(ck.CheckpointError, match=r"G\.0\.weight holds NaN"):
        ck.save_checkpoint(tmp_path, 2, {"G": m}, {"G": opt}, {})
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-000000001"]


def test_failure_between_temp_write_and_rename_keeps_previous(tmp_path, monkeypatch):
    m, opt = _model_and_adam()
    ck.save_checkpoint(tmp_path, 1, {"G": m}, {"G": opt}, {})
    before = ck.open_checkpoint(tmp_path).tensors("G")

    def dies(src, dst):
        raise OSError("disk pulled out")

    monkeypatch.setattr(ck.os, "rename", dies)
    _train(m, opt, 1)
    with pytest.raises(OSError, match="disk pulled out"):
        ck.save_checkpoint(tmp_path, 2, {"G": m}, {"G": opt}, {})
    monkeypatch.undo()
    c = ck.open_checkpoint(tmp_path)
    assert c.step == 1 and all(torch.equal(before[k], v) for k, v in c.tensors("G").items())
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-000000001"]


WRITER = textwrap.dedent("""
    import sys, torch
    from torch import nn
    from jewelgan.runs.checkpoint import save_checkpoint
    m = nn.Linear(1024, 1024)
    step = 0
    while True:
        step += 1
        with torch.no_grad():
            m.weight.fill_(step); m.bias.fill_(step)
        save_checkpoint(sys.argv[1], step, {"G": m, "D": m}, {}, {"value": step}, keep_last=2)
        print(step, flush=True)
""")


def test_sigkill_during_a_write_leaves_the_previous_checkpoint_loadable(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env, text=True)
    assert p.stdout.readline().strip() == "1"  # the first checkpoint is complete
    root = tmp_path / "checkpoints"
    deadline = time.time() + 30
    while not any(n.startswith(".tmp-step-") for n in os.listdir(root)) and time.time() < deadline:
        pass  # spin: the kill must land while the next checkpoint is being written
    p.send_signal(signal.SIGKILL)
    p.wait()
    c = ck.open_checkpoint(tmp_path)
    for name in ("G", "D"):
        t = c.tensors(name)
        assert torch.all(t["weight"] == c.step) and torch.all(t["bias"] == c.step)
    assert c.state["value"] == c.step
    assert 1 <= len(ck.list_checkpoints(tmp_path)) <= 2
    # the next save clears the half-written leftovers of the killed process
    ck.save_checkpoint(tmp_path, c.step + 1, {"G": nn.Linear(2, 2)}, {}, {})
    assert not [q for q in root.iterdir() if q.name.startswith(".")]


def test_keeps_last_k_and_the_best(tmp_path):
    m, _ = _model_and_adam()
    for step in range(1, 7):
        ck.save_checkpoint(tmp_path, step, {"G": m}, {}, {}, keep_last=2, best_step=2)
    assert [ck._step_of(p) for p in ck.list_checkpoints(tmp_path)] == [2, 5, 6]
    assert ck.latest_checkpoint(tmp_path).name == "step-000000006"
