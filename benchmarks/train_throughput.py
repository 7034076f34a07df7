"""Training throughput per model or preset: images/s, achieved GFLOP/s, utilisation and peak memory.

For every model (or style preset) and variant (fp32, bf16 autocast, channels_last, both, or the preset's
own settings) this times full training steps of the real Trainer (data loading, D and G updates, EMA)
on a synthetic archive, counts the FLOPs of one step (forward and backward of D and G) with
torch.utils.flop_counter, and prints them next to the matmul GFLOP/s of this machine measured in the
same run, so the ratio is comparable across machines. On CUDA it also prints the peak GPU memory a
variant's trainer allocated (weights, optimiser state, activations of its warm-up steps).

    python benchmarks/train_throughput.py [--models mlp,dcgan] [--res 64] [--batch 32] [--seconds 8] [--rounds 4] [--threads N] [--model-args '{ngf: 32, ndf: 32}']
    python benchmarks/train_throughput.py --presets gpu-128,gpu-256,gpu-512 --variants preset,fp32 --device cuda
    python benchmarks/train_throughput.py --presets cpu-64 --variants preset --threads 1 --conv-breakdown 12

--conv-breakdown N then profiles a few steps of each variant and prints the N convolutions (by input and weight
shape) that take the most time per step, forward and backward, with their share of the step.
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
from jewelgan.models.presets import preset_config
from jewelgan.train import Trainer

# each variant sets both switches, so a preset's own choice does not leak into "fp32"; "preset" keeps it
VARIANTS = {"fp32": {"bf16": False, "channels_last": False}, "bf16": {"bf16": True, "channels_last": False},
            "channels_last": {"bf16": False, "channels_last": True},
            "bf16+channels_last": {"bf16": True, "channels_last": True}, "preset": {}}


def make_archive(path: Path, res: int, n: int = 256) -> Path:
    rng = np.random.default_rng(0)
    with ArchiveWriter(path, res) as w:
        for i in range(n):
            img = (rng.random((res, res, 3)) * 255).astype(np.uint8)
            w.add(img, {"category": ["ring", "pendant", "earrings", "bracelet"][i % 4],
                        "metal": ["yellow_gold", "silver"][i % 2]}, f"bench/{i}")
    return path


def matmul_gflops(dtype: torch.dtype, device: str = "cpu", seconds: float = 2.0) -> float:
    n = 1024 if device == "cpu" else 8192  # large enough to be compute-bound on either
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        if reps % 10 == 0:
            sync(device)
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_flops(trainer: Trainer) -> int:
    """FLOPs of one training step; 0 where FlopCounterMode cannot follow the step (R1's double backward)."""
    try:
        with FlopCounterMode(display=False) as fc:
            trainer.train_step(1)
    except RuntimeError:
        return 0
    return fc.get_total_flops()


def conv_breakdown(trainer: Trainer, top: int, steps: int = 3, first_step: int = 1000) -> list[str]:
    """The convolutions that cost the most per training step, as printable lines (CPU time)."""
    from torch.profiler import ProfilerActivity, profile

    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for s in range(steps):
            trainer.train_step(first_step + s)
    step_ms = (time.perf_counter() - t0) / steps * 1e3
    cost: dict[str, list[float]] = {}
    for e in prof.key_averages(group_by_input_shape=True):
        kind = {"aten::mkldnn_convolution": 0, "aten::convolution_backward": 1}.get(e.key)
        if kind is None or not e.input_shapes:
            continue
        # forward: (input, weight, ...); backward: (grad_out, input, weight, ...)
        shapes = e.input_shapes[:2] if kind == 0 else e.input_shapes[1:3]
        key = f"in {tuple(shapes[0])} w {tuple(shapes[1])}"
        cost.setdefault(key, [0.0, 0.0])[kind] += e.self_cpu_time_total / 1e3 / steps
    rows = sorted(cost.items(), key=lambda kv: -sum(kv[1]))
    total = sum(sum(v) for v in cost.values())
    lines = [f"  step {step_ms:.0f} ms, convolutions {total:.0f} ms ({total / step_ms:.0%}); top {top}:"]
    for key, (fwd, bwd) in rows[:top]:
        lines.append(f"  {key:52s} fwd {fwd:6.1f} ms  bwd {bwd:6.1f} ms  {(fwd + bwd) / step_ms:6.1%}")
    return lines


def bench_model(base: dict, variants: list[str], seconds: float, rounds: int, breakdown: int = 0,
                ) -> dict[str, tuple[float, float, float | None]]:
    """Variants are timed in interleaved rounds and the median taken: on a shared CPU, load that comes
    and goes then hits every variant alike, so their ratios stay meaningful.

    base: TrainConfig fields shared by the variants. Returns per variant (images/s, GFLOP/s, peak GiB or None).
    """
    trainers, flops, peaks, rates = {}, {}, {}, {v: [] for v in variants}
    cuda = str(base.get("device", "cpu")).startswith("cuda")
    for name in variants:
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        trainers[name] = t = Trainer(TrainConfig(**{**base, **VARIANTS[name]}))
        flops[name] = step_flops(t)
        for s in range(3):  # warm-up (allocator, oneDNN primitive cache, cuDNN autotuning)
            t.train_step(s)
        # what this trainer added on top of the ones built before it
        peaks[name] = (torch.cuda.max_memory_allocated() - before) / 2**30 if cuda else None
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
        out_[name] = (base["batch"] * steps_per_s, flops[name] * steps_per_s / 1e9, peaks[name])
        if breakdown and not cuda:
            print(f"{name}:\n" + "\n".join(conv_breakdown(trainers[name], breakdown)), flush=True)
    return out_


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,dcgan")
    ap.add_argument("--presets", default="", help="style presets to time with their own training settings "
                    "(batch, resolution, loss, augmentation); replaces --models, --res and --batch")
    ap.add_argument("--variants", default="fp32,bf16,channels_last,bf16+channels_last",
                    help=f"comma list of {', '.join(VARIANTS)}")
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=8.0, help="timed seconds per variant")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds the seconds are split into")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--model-args", default="{}", help="YAML mapping passed to every model, e.g. '{ngf: 32, ndf: 32}'")
    ap.add_argument("--conv-breakdown", type=int, default=0, metavar="N",
                    help="CPU: also print the N costliest convolutions of a step per variant")
    args = ap.parse_args()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        ap.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: CUDA is not available on this machine")
    if args.threads:
        torch.set_num_threads(args.threads)
    peak32, peak16 = matmul_gflops(torch.float32, args.device), matmul_gflops(torch.bfloat16, args.device)
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}")
    print(f"matmul: fp32 {peak32:.1f} GFLOP/s, bf16 {peak16:.1f} GFLOP/s")
    print(f"{'model':10s} {'res':>4s} {'batch':>5s} {'variant':20s} {'img/s':>8s} {'GFLOP/step':>11s} {'GFLOP/s':>8s} "
          f"{'util':>6s} {'peak GiB':>8s}")
    if args.presets:
        jobs = [(p, {**preset_config(p), "model_args": {"preset": p}}) for p in args.presets.split(",")]
    else:
        jobs = [(m, {"model": m, "res": args.res, "batch": args.batch, "model_args": yaml.safe_load(args.model_args)})
                for m in args.models.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for name, fields in jobs:
            res = fields["res"]
            data = Path(tmp) / f"bench{res}.jga"
            if not data.exists():
                make_archive(data, res)
            base = {**fields, "data": str(data), "kimg": 1000, "progress": False, "out": str(Path(tmp) / "runs"),
                    "device": args.device}
            results = bench_model(base, variants, args.seconds, args.rounds, args.conv_breakdown)
            for variant in variants:
                ips, gflops, peak_gib = results[variant]
                bf16 = {**fields, **VARIANTS[variant]}.get("bf16", False)
                peak = peak16 if bf16 else peak32
                per_step = gflops * base["batch"] / ips
                mem = f"{peak_gib:8.2f}" if peak_gib is not None else f"{'-':>8s}"
                counted = (f"{per_step:11.2f} {gflops:8.1f} {gflops / peak:6.1%}" if gflops > 0
                           else f"{'-':>11s} {'-':>8s} {'-':>6s}")  # the FLOP counter could not follow the step
                print(f"{name:10s} {res:4d} {base['batch']:5d} {variant:20s} {ips:8.1f} {counted} {mem}", flush=True)
    again32, again16 = matmul_gflops(torch.float32, args.device), matmul_gflops(torch.bfloat16, args.device)
    print(f"matmul again at the end: fp32 {again32:.1f}, bf16 {again16:.1f} GFLOP/s "
          f"(a large change from the start means the machine was busy; util uses the start figures)")


if __name__ == "__main__":
    main()
