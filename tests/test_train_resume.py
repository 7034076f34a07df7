"""Exact resume: a training process killed with SIGKILL and resumed ends bit-identical to an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import torch

from jewelgan.runs.checkpoint import list_checkpoints, open_checkpoint
from test_train import make_shapes

ARGS = ["--model", "dcgan", "--batch", "8", "--kimg", "0.32", "--ckpt-every", "0.08", "--grid-every", "0",
        "--deterministic", "--threads", "1", "--no-progress", "--r1", "0.5", "--set", "model_args={ngf: 16, ndf: 16}",
        "--set", "ema_kimg=0.05", "--set", "guard_every=7"]


def _jewelgan(*args: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.Popen([sys.executable, "-c", "from jewelgan.cli import main; main()", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(p: subprocess.Popen) -> str:
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    return out


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    data = make_shapes(tmp_path / "d.jga", n=20)  # 40 steps of 8 = 16 epochs: resume crosses epoch boundaries
    full = _jewelgan("train", "--data", str(data), "--out", str(tmp_path / "a"), "--name", "full", *ARGS)
    killed = _jewelgan("train", "--data", str(data), "--out", str(tmp_path / "b"), "--name", "killed", *ARGS)
    run_b = tmp_path / "b" / "killed"
    deadline = time.time() + 90
    while not list_checkpoints(run_b) and killed.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.15)  # let it get into the following steps (or a checkpoint write) before the kill
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "training finished before it could be killed"
    first = open_checkpoint(run_b).step
    assert 0 < first < 40
    _finish(_jewelgan("train", "--resume", str(run_b)))
    _finish(full)
    a, b = open_checkpoint(tmp_path / "a" / "full"), open_checkpoint(run_b)
    assert a.step == b.step == 40
    for name in ("G", "G_ema", "D", "optim"):
        ta, tb = a.tensors(name), b.tensors(name)
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{name}.{k} differs after resume from step {first}"
    assert a.state["optim"] == b.state["optim"]
    assert (tmp_path / "a" / "full" / "metrics.jsonl").read_text().count('"train"') == \
        (run_b / "metrics.jsonl").read_text().count('"train"')


def test_a_run_being_trained_cannot_be_trained_by_a_second_process(tmp_path):
    """A resume started while another process still trains the run (an orphaned torchrun worker, a second
    terminal) is refused, naming the holder; once that process is gone (even by SIGKILL) it goes ahead."""
    from jewelgan.train import TrainConfig, train
    from jewelgan.runs.rundir import lock_run_dir

    data = make_shapes(tmp_path / "s.jga", n=16)
    run = train(TrainConfig(data=str(data), model="mlp", batch=8, kimg=0.016, progress=False, threads=1,
                            grid_every=0, out=str(tmp_path / "runs"), name="r"))
    holder = lock_run_dir(run)  # as the other trainer would hold it
    try:
        res = subprocess.run([sys.executable, "-c", "from jewelgan.cli import main; main()", "train", "--resume",
                              str(run), "--kimg", "0.032", "--no-progress"], capture_output=True, text=True,
                             timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert res.returncode != 0 and f"being trained by pid {os.getpid()}" in res.stderr + res.stdout
    finally:
        holder.close()
    train(resume=run, overrides={"kimg": 0.032})  # free again
    assert open_checkpoint(run).step == 4


def test_channels_last_resume_is_bit_identical(tmp_path):
    """A channels_last run stopped half way and resumed ends bit-identical to the uninterrupted run (the Adam
    moments come back contiguous from a checkpoint; fused Adam must see them in the parameters' layout)."""
    from jewelgan.runs.checkpoint import open_checkpoint
    from jewelgan.train import train
    from test_train import make_shapes, tiny

    data = make_shapes(tmp_path / "d.jga", n=16)
    kw = dict(model="dcgan", kimg=0.064, channels_last=True, deterministic=True, ckpt_every=0, out=tmp_path)
    full = train(tiny(data, name="full", **kw))
    half = train(tiny(data, name="half", **{**kw, "kimg": 0.032}))
    train(resume=half, overrides={"kimg": 0.064})
    a, b = open_checkpoint(full), open_checkpoint(half)
    assert a.step == b.step == 8
    for name in ("G", "G_ema", "D", "optim"):
        ta, tb = a.tensors(name), b.tensors(name)
        assert all(torch.equal(ta[k], tb[k]) for k in ta), name
