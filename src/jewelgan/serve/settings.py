"""What `jewelgan serve` is started with; every cap a hostile or careless client could push against."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class SettingsError(ValueError):
    """A bad server setting (names the setting and what it accepts)."""


@dataclass
class ServeSettings:
    models: list[str] = field(default_factory=list)  # shipped names or model folders; empty: the default
    host: str = "127.0.0.1"
    port: int = 8000
    keys_file: Path | None = None  # None: no keys, loopback only
    jobs_dir: Path = Path("jewelgan_jobs")
    device: str = "cpu"
    study: Path | None = None  # a study file (`jewelgan study create`) whose pages this server also serves
    compile: bool = False  # torch.compile the generators (faster; last-bit differences from the plain CLI)
    max_n: int = 64  # images per interactive request
    max_size: int = 512  # output edge in pixels (the model draws its sizes; larger ones are refused)
    max_job_n: int = 10_000
    max_body_bytes: int = 64 * 1024  # requests are small JSON; anything bigger is refused before it is read
    max_upload_bytes: int = 8 * 1024 * 1024  # a photo to edit or try on (POST /v1/edit, /v1/tryon)
    max_upload_pixels: int = 40_000_000  # an upload's decoded size, read from its header before any decoding
    heavy_slots: int = 2  # heavy work at once (an edit takes 2, a try-on or a large upsampling 1); more: 503
    edit_steps: tuple[int, int] = (100, 50)  # inversion steps on w, then on w per layer
    max_queue_images: int = 128
    max_batch: int = 64  # images joined into one forward pass
    max_inflight: int = 256  # API requests being handled at once; more get 503 before any parsing of the body
    rate: float = 20.0  # requests per second per API key (token bucket) ...
    burst: int = 40  # ... with bursts up to this
    request_timeout: float = 30.0
    max_jobs_per_key: int = 10  # queued or running bulk jobs per key ...
    max_job_images_per_key: int = 50_000  # ... and the images they still have to make
    job_slice: float = 20.0  # seconds a job runs before it gives way to another key's queued job
    job_ttl: float = 7 * 24 * 3600.0  # seconds a finished job and its files are kept (0: forever)
    admin_key: str | None = None  # the key that takes over jobs made without keys; default: the first key
    public_docs: bool | None = None  # /docs and /openapi.json without a key; None: only when there are no keys
    public_metrics: bool | None = None  # /metrics without a key; None: only when there are no keys

    def check(self) -> "ServeSettings":
        positive = ("port", "max_n", "max_size", "max_job_n", "max_body_bytes", "max_queue_images", "max_batch",
                    "burst", "max_inflight", "max_upload_bytes", "max_upload_pixels", "heavy_slots", "max_jobs_per_key",
                    "max_job_images_per_key")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SettingsError(f"{name} must be a positive integer, got {value!r}")
        if self.rate <= 0 or self.request_timeout <= 0 or self.job_slice <= 0:
            raise SettingsError("rate, request_timeout and job_slice must be > 0")
        if self.job_ttl < 0:
            raise SettingsError(f"job_ttl must be >= 0 seconds (0: keep finished jobs), got {self.job_ttl!r}")
        if self.max_queue_images < self.max_n:
            raise SettingsError(f"max_queue_images ({self.max_queue_images}) must be >= max_n ({self.max_n}), "
                                "or no request of max_n images could ever be queued")
        if self.max_job_images_per_key < self.max_job_n:
            raise SettingsError(f"max_job_images_per_key ({self.max_job_images_per_key}) must be >= max_job_n "
                                f"({self.max_job_n}), or no job of max_job_n images could ever be submitted")
        if self.keys_file is None and not is_loopback(self.host):
            raise SettingsError(f"--host {self.host}: serving beyond this machine needs API keys (--keys FILE; "
                                "make one with `jewelgan serve-keys add NAME --file FILE`)")
        return self

    def docs_open(self) -> bool:
        return self.keys_file is None if self.public_docs is None else self.public_docs

    def metrics_open(self) -> bool:
        return self.keys_file is None if self.public_metrics is None else self.public_metrics


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
