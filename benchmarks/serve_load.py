"""Load test of `jewelgan serve` on loopback: steady load, then overload; prints a table.

    python benchmarks/serve_load.py [--clients 32] [--steady 60] [--overload 30] [--threads N] [--model M]

Phase 1 (steady): `--clients` closed-loop clients, each asking for one image (POST /v1/generate, n=1,
a new seed each time) as soon as its last answer came. Its images/s is the server's capacity.
Phase 2 (overload): open-loop arrivals at 4x that capacity (requests sent on a clock, not waiting for
answers), which must be answered 503 + Retry-After when the queue is full, never hang or fail.
The server's RSS is sampled every second (from /proc) to show it stays flat.

The client is a minimal asyncio HTTP/1.1 client (keep-alive, one connection per client) so that it
takes as little of the 2 cores as possible from the server; it still takes some, so figures are a
floor. Timings on a shared machine are noisy: compare runs made back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Connection:
    """One keep-alive HTTP/1.1 connection; post() returns (status, seconds)."""

    def __init__(self, port: int):
        self.port, self.reader, self.writer = port, None, None

    async def post(self, path: str, body: dict) -> tuple[int, float]:
        data = json.dumps(body).encode()
        start = time.perf_counter()
        for attempt in range(2):  # reconnect once if the server closed an idle connection
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
                self.writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                  f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await self.writer.drain()
                head = await self.reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await self.reader.readexactly(length)
                return status, time.perf_counter() - start
            except (ConnectionError, asyncio.IncompleteReadError):
                self.writer = None
                if attempt:
                    return -1, time.perf_counter() - start
        return -1, time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (all its threads)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                key, kb = line.split()[:2]
                values[key.rstrip(":")] = int(kb) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


async def sample_rss(pid: int, out: list, stop: asyncio.Event):
    while not stop.is_set():
        out.append((time.time(), *rss_mib(pid)))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


def summarise(name: str, results: list[tuple[int, float]], seconds: float) -> dict:
    codes: dict[int, int] = {}
    for status, _ in results:
        codes[status] = codes.get(status, 0) + 1
    ok = [t for s, t in results if s == 200]
    lat = np.array(ok) * 1000 if ok else np.zeros(1)
    return {"phase": name, "requests": len(results), "req_s": len(results) / seconds, "images_s": len(ok) / seconds,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "ok": len(ok), "503": codes.get(503, 0), "client_capped": codes.get(-2, 0),
            "errors": sum(c for s, c in codes.items() if s not in (200, 503, -2)), "codes": codes}


async def steady(port: int, clients: int, seconds: float) -> list:
    results: list = []
    end = time.perf_counter() + seconds
    rng = random.Random(0)

    async def client():
        conn = Connection(port)
        while time.perf_counter() < end:
            results.append(await conn.post("/v1/generate", {"n": 1, "seed": rng.randrange(2**31)}))

    await asyncio.gather(*(client() for _ in range(clients)))
    return results


async def overload(port: int, rate: float, seconds: float, max_connections: int = 512) -> list:
    """Open-loop: a request every 1/rate s, each on a free pooled connection (new ones up to the cap)."""
    results: list = []
    pool: list[Connection] = []
    opened = 0
    rng = random.Random(1)
    tasks = []

    async def one():
        nonlocal opened
        if pool:
            conn = pool.pop()
        elif opened < max_connections:
            opened += 1
            conn = Connection(port)
        else:
            results.append((-2, 0.0))  # the client itself ran out of connections: counted apart, not hidden
            return
        results.append(await conn.post("/v1/generate", {"n": 1, "seed": rng.randrange(2**31)}))
        pool.append(conn)

    start = time.perf_counter()
    k = 0
    while time.perf_counter() - start < seconds:
        tasks.append(asyncio.ensure_future(one()))
        k += 1
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.gather(*tasks)
    return results


async def main_async(args, pid: int, port: int) -> None:
    samples: list = []
    stop = asyncio.Event()
    sampler = asyncio.ensure_future(sample_rss(pid, samples, stop))
    await steady(port, 4, 5)  # warm-up: first calls allocate the batch buffers
    rss_start = rss_mib(pid)[0]
    t = time.perf_counter()
    cpu_start = cpu_seconds(pid)
    phase1 = summarise(f"steady, {args.clients} clients", await steady(port, args.clients, args.steady),
                       args.steady)
    rss_after_steady = rss_mib(pid)[0]
    phase1["server_cpu_ms_per_image"] = 1000 * (cpu_seconds(pid) - cpu_start) / max(phase1["ok"], 1)
    capacity = max(phase1["images_s"], 1.0)
    phase2 = summarise(f"overload, {4 * capacity:.0f} req/s offered",
                       await overload(port, 4 * capacity, args.overload), args.overload)
    stop.set()
    await sampler
    rss_end, rss_peak = rss_mib(pid)
    client_cpu = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = client_cpu.ru_utime + client_cpu.ru_stime
    print(f"server: jewelgan serve --model {args.model or 'default64'} (threads: {args.threads or 'all'}"
          f"{', compiled' if args.compile else ''}); "
          f"{time.perf_counter() - t:.0f} s of load")
    print(f"{'phase':34s} {'requests':>8s} {'req/s':>7s} {'img/s':>7s} {'p50 ms':>7s} {'p99 ms':>7s} "
          f"{'503':>6s} {'errors':>6s} {'unsent':>6s}")
    for p in (phase1, phase2):
        print(f"{p['phase']:34s} {p['requests']:8d} {p['req_s']:7.1f} {p['images_s']:7.1f} {p['p50_ms']:7.1f} "
              f"{p['p99_ms']:7.1f} {p['503']:6d} {p['errors']:6d} {p['client_capped']:6d}")
    print(f"server RSS MiB: after warm-up {rss_start:.0f}, after steady {rss_after_steady:.0f}, "
          f"end {rss_end:.0f}, peak {rss_peak:.0f}")
    print("unsent: requests the load client could not send (all its 512 connections were waiting)")
    print(f"server CPU per image (steady): {phase1['server_cpu_ms_per_image']:.1f} ms")
    total = phase1["requests"] + phase2["requests"]
    print(f"load client CPU: {client_cpu:.1f} s ({1000 * client_cpu / max(total, 1):.2f} ms per request), "
          "taken from the same 2 cores")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--steady", type=float, default=60)
    ap.add_argument("--overload", type=float, default=30)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--compile", action="store_true", help="serve with --compile")
    args = ap.parse_args()
    port = free_port()
    cmd = [sys.executable, "-m", "jewelgan.cli", "serve", "--port", str(port), "--jobs-dir",
           tempfile.mkdtemp(prefix="jewelgan-load-")]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.model:
        cmd += ["--model", args.model]
    if args.compile:
        cmd += ["--compile"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import urllib.request

        deadline = time.time() + 300  # --compile compiles before it is ready
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:  # not listening (or not ready: 503) yet
                time.sleep(0.2)
        asyncio.run(main_async(args, server.pid, port))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
