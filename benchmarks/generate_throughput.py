"""Generation speed of a model: images/s batched and one-image latency, torch vs onnxruntime, fp32 vs bf16.

    .venv/bin/python benchmarks/generate_throughput.py [--model default64] [--batch 64] [--threads N] [--compile]

Prints one table, with the same run's fp32 and bf16 GEMM GFLOP/s beside it so figures from different
machines (or a busy one) can be read against what the CPU delivered at the time. Images are what the
model draws (RGB as seen, plus alpha), uint8; cut-out unmixing (jewelgan.inference.cutout) is not included.
--compile adds torch.compile rows (inductor fuses the many small element-wise passes of the 64 px layers;
the first call compiles, about a minute here, and is not timed).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np
import torch

import jewelgan
from jewelgan.inference import sample_inputs
from jewelgan.grid import to_uint8
from jewelgan.inference import resolve_model


def gemm_gflops(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def timed(fn, seconds: float) -> list[float]:
    fn()  # warm-up (allocations, oneDNN primitive creation)
    times, t0 = [], time.perf_counter()
    while time.perf_counter() - t0 < seconds or len(times) < 5:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model name or folder (default: the shipped default)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="default: all cores")
    ap.add_argument("--seconds", type=float, default=5.0, help="time spent on each measurement")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd G")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    model = jewelgan.load_model(args.model)
    G = model.G
    z, labels, _ = sample_inputs(model.schema, G.z_dim, args.batch, {}, 0, 1.0, model.info["label_rows"],
                                 truncate_z=False)
    rows = []
    variants = [("torch", G)]
    if args.compile:
        variants.append(("torch.compile", torch.compile(G, dynamic=False)))
    for runtime, net in variants:
        for precision in ("fp32", "bf16"):
            cast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext())

            def run(n: int, cast=cast, net=net) -> np.ndarray:
                with torch.no_grad(), cast:
                    return to_uint8(net(z[:n], labels[:n]))

            rows.append((runtime, precision, timed(lambda: run(args.batch), args.seconds),
                         timed(lambda: run(1), args.seconds)))
    onnx_path = resolve_model(args.model) / "generator.onnx"
    if onnx_path.is_file():
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]

        def feed(n: int) -> dict:
            f = {"z": z[:n].numpy(), "labels": labels[:n].numpy()}
            return {**f, "truncation": np.ones(1, np.float32)} if "truncation" in names else f

        big, one = feed(args.batch), feed(1)
        rows.append(("onnxruntime", "fp32", timed(lambda: session.run(None, big), args.seconds),
                     timed(lambda: session.run(None, one), args.seconds)))
    gf32, gf16 = gemm_gflops(torch.float32), gemm_gflops(torch.bfloat16)
    print(f"model {model.info['path']} ({model.resolution} px, {'RGBA' if model.has_alpha else 'RGB'}), "
          f"{threads} threads; GEMM 1024^3: fp32 {gf32:.0f} GFLOP/s, bf16 {gf16:.0f} GFLOP/s")
    print(f"{'runtime':14s} {'precision':9s} {'images/s (batch ' + str(args.batch) + ')':>22s} "
          f"{'1 image p50 ms':>15s} {'p99 ms':>8s}")
    for runtime, precision, batched, single in rows:
        single_ms = sorted(t * 1000 for t in single)
        p99 = single_ms[min(len(single_ms) - 1, int(0.99 * len(single_ms)))]
        print(f"{runtime:14s} {precision:9s} {args.batch / statistics.median(batched):22.0f} "
              f"{statistics.median(single_ms):15.2f} {p99:8.2f}")


if __name__ == "__main__":
    main()
