"""Training throughput per model at 64 px: images/s, achieved GFLOP/s and utilisation of the machine.

For every model and variant (fp32, bf16 autocast, channels_last, both) this times full training steps
of the real Trainer (data loading, D and G updates, EMA) on a synthetic archive, counts the FLOPs of
one step (forward and backward of D and G) with torch.utils.flop_counter, and prints them next to the
matmul GFLOP/s of this machine measured in the same run, so the ratio is comparable across machines.

    python benchmarks/train_throughput.py [--models mlp,dcgan] [--res 64] [--batch 32] [--seconds 8] [--rounds 4] [--threads N] [--model-args '{ngf: 32, ndf: 32}']
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from jewelgan.config import TrainConfig
from jewelgan.data import ArchiveWriter
from jewelgan.train import Trainer

VARIANTS = {"fp32": {}, "bf16": {"bf16": True}, "channels_last": {"channels_last": True},
            "bf16+channels_last": {"bf16": True, "channels_last": True}}


def make_archive(path: Path, res: int, n: int = 256) -> Path:
    rng = np.random.default_rng(0)
    with ArchiveWriter(path, res) as w:
        for i in range(n):
            img = (rng.random((res, res, 3)) * 255).astype(np.uint8)
            w.add(img, {"category": ["ring", "pendant", "earrings", "bracelet"][i % 4],
                        "metal": ["yellow_gold", "silver"][i % 2]}, f"bench/{i}")
    return path


def matmul_gflops(dtype: torch.dtype, n: int = 1024, seconds: float = 2.0) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def step_flops(trainer: Trainer) -> int:
    with FlopCounterMode(display=False) as fc:
        trainer.train_step(10_000)
    return fc.get_total_flops()


def bench_model(data: Path, model: str, variants: list[str], batch: int, seconds: float, rounds: int,
                out: Path, model_args: dict | None = None) -> dict[str, tuple[float, float]]:
    """Variants are timed in interleaved rounds and the median taken: on a shared CPU, load that comes
    and goes then hits every variant alike, so their ratios stay meaningful."""
    trainers, flops, rates = {}, {}, {v: [] for v in variants}
    for name in variants:
        cfg = TrainConfig(data=str(data), model=model, batch=batch, kimg=1000, progress=False, out=str(out),
                          model_args=dict(model_args or {}), **VARIANTS[name])
        trainers[name] = t = Trainer(cfg)
        flops[name] = step_flops(t)
        for s in range(3):  # warm-up (allocator, oneDNN primitive cache)
            t.train_step(s)
    step = 3
    for _ in range(rounds):
        for name, t in trainers.items():
            steps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / rounds:
                t.train_step(step)
                step, steps = step + 1, steps + 1
            rates[name].append(steps / (time.perf_counter() - t0))
    out_ = {}
    for name in variants:
        steps_per_s = float(np.median(rates[name]))
        out_[name] = (batch * steps_per_s, flops[name] * steps_per_s / 1e9)
    return out_


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,dcgan")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=8.0, help="timed seconds per variant")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds the seconds are split into")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--model-args", default="{}", help="YAML mapping passed to every model, e.g. '{ngf: 32, ndf: 32}'")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak32, peak16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, res {args.res}, batch {args.batch}")
    print(f"matmul 1024^3: fp32 {peak32:.1f} GFLOP/s, bf16 {peak16:.1f} GFLOP/s")
    print(f"{'model':6s} {'variant':20s} {'img/s':>8s} {'GFLOP/step':>11s} {'GFLOP/s':>8s} {'util':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        data = make_archive(Path(tmp) / "bench.jga", args.res)
        for model in args.models.split(","):
            variants = args.variants.split(",")
            results = bench_model(data, model, variants, args.batch, args.seconds, args.rounds, Path(tmp) / "runs",
                                  yaml.safe_load(args.model_args))
            for name in variants:
                ips, gflops = results[name]
                peak = peak16 if VARIANTS[name].get("bf16") else peak32
                per_step = gflops * args.batch / ips
                print(f"{model:6s} {name:20s} {ips:8.1f} {per_step:11.2f} {gflops:8.1f} {gflops / peak:6.1%}", flush=True)
    again32, again16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(f"matmul again at the end: fp32 {again32:.1f}, bf16 {again16:.1f} GFLOP/s "
          f"(a large change from the start means the machine was busy; util uses the start figures)")


if __name__ == "__main__":
    main()
