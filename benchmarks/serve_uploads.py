"""Memory of `jewelgan serve` under heavy uploads: three parallel try-ons at once, RSS during and after.

    python benchmarks/serve_uploads.py [--photo-mp 24] [--rounds 3] [--unguarded] [--uploads bomb,photo]

Starts `jewelgan serve` on loopback and, per round, sends three POST /v1/tryon at the same moment:
  1. bombs: a 12,000 x 12,000 PNG (a few KB on the wire, 432 MB as RGB). The server refuses each from
     its header (422) without decoding it;
  2. photos: a real JPEG of --photo-mp megapixels (within the pixel cap), three at once. The heavy-work
     limit (2 slots) admits two and answers the third 503 + Retry-After.
The server's RSS is sampled every 50 ms from /proc: before, the peak during each burst, and 3 s after it
(when the last heavy request ends the server hands free pages back to the system). --unguarded lifts the
caps (--max-upload-pixels 200 MP, --heavy-slots 6) to show what they save; it needs several GB of RAM.
Nothing here is asserted: the figures are for docs/serve.md.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import urllib.error
import urllib.request

import numpy as np
from PIL import Image


def post_form(url: str, fields: dict[str, str], file: tuple[str, bytes, str], timeout: float = 120) -> int:
    """POST a multipart form with one file; the status code."""
    boundary = "jewelganbench" + os.urandom(8).hex()
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    name, data, kind = file
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="{name}"\r\n'
                 f"Content-Type: {kind}\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            res.read()
            return res.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler:
    """RSS of a process every 50 ms in a thread; peak() since the last reset()."""

    def __init__(self, pid: int):
        self.pid, self.top, self.stop = pid, 0.0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stop.is_set():
            self.top = max(self.top, rss_mib(self.pid))
            time.sleep(0.05)

    def reset(self) -> None:
        self.top = rss_mib(self.pid)


def bomb_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (12_000, 12_000), 1).save(buf, "PNG")
    return buf.getvalue()


def photo_jpeg(megapixels: float) -> bytes:
    """A smooth photo-like JPEG (gradients and mild noise) of about `megapixels`, 4:3."""
    h = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    w = int(h * 4 / 3)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([120 + 80 * np.sin(x / 400), 110 + 70 * np.cos(y / 300), 140 + 60 * np.sin((x + y) / 500)], -1)
    rgb += rng.normal(0, 4, rgb.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def burst(port: int, data: bytes, name: str, sampler: Sampler, pid: int) -> dict:
    """Three try-ons sent together; statuses, seconds, RSS before / peak / 3 s after."""
    before = rss_mib(pid)
    sampler.reset()
    barrier = threading.Barrier(3)

    def one(_):
        barrier.wait()
        start = time.perf_counter()
        status = post_form(f"http://127.0.0.1:{port}/v1/tryon", {"attributes": '{"category": "ring"}'},
                           (name, data, "image/png" if name.endswith(".png") else "image/jpeg"))
        return status, time.perf_counter() - start

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(one, range(3)))
    peak = sampler.top
    time.sleep(3.0)
    return {"statuses": sorted(s for s, _ in results), "seconds": max(t for _, t in results), "before": before,
            "peak": peak, "after": rss_mib(pid)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo-mp", type=float, default=24.0, help="megapixels of the legitimate photo")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--unguarded", action="store_true", help="lift the pixel cap and the heavy-work limit")
    ap.add_argument("--no-trim", action="store_true", help="serve without handing memory back after heavy work "
                                                          "(to see what that does)")
    ap.add_argument("--uploads", default="bomb,photo", help="which bursts, of bomb and photo (unguarded bombs "
                                                            "take about 2.3 GB each)")
    args = ap.parse_args()
    port = free_port()
    launcher = ["-m", "jewelgan.cli"]
    if args.no_trim:
        launcher = ["-c", "import sys, jewelgan.serve.uploads as u; u.give_back_memory = lambda: None; "
                          "from jewelgan.cli import main; main()"]
    cmd = [sys.executable, *launcher, "serve", "--port", str(port), "--jobs-dir",
           tempfile.mkdtemp(prefix="jewelgan-uploads-")]
    if args.unguarded:
        cmd += ["--max-upload-pixels", "200000000", "--heavy-slots", "6"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not ready(port):
            time.sleep(0.2)
        sampler = Sampler(server.pid)
        bomb, photo = bomb_png(), photo_jpeg(args.photo_mp)
        print(f"server {'UNGUARDED' if args.unguarded else 'with its guards'}"
              f"{', no malloc_trim' if args.no_trim else ''}; bomb: 12000x12000 PNG of "
              f"{len(bomb) / 1024:.0f} KiB; photo: {args.photo_mp:g} MP JPEG of {len(photo) / 2**20:.1f} MiB")
        # one warm-up try-on (loads scipy, draws the first piece) so the rounds compare like with like
        burst(port, photo_jpeg(0.3), "warm.jpg", sampler, server.pid)
        print(f"{'round':>5} {'upload':>7} {'statuses':>16} {'s':>6} {'RSS before':>11} {'peak':>7} {'3 s after':>10}")
        for k in range(args.rounds):
            for name, data in (("bomb.png", bomb), ("photo.jpg", photo)):
                if name.split(".")[0] not in args.uploads.split(","):
                    continue
                r = burst(port, data, name, sampler, server.pid)
                print(f"{k + 1:>5} {name.split('.')[0]:>7} {str(r['statuses']):>16} {r['seconds']:6.2f} "
                      f"{r['before']:9.0f} M {r['peak']:5.0f} M {r['after']:8.0f} M")
        sampler.stop.set()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
