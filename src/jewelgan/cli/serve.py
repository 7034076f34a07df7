"""`jewelgan serve` (the HTTP API and browser studio) and `jewelgan serve-keys` (its API keys)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import List, Optional

import typer

from jewelgan.cli.app import app, fail

keys_app = typer.Typer(help="API keys for `jewelgan serve --keys FILE` (stored hashed).", no_args_is_help=True)
app.add_typer(keys_app, name="serve-keys")


@app.command("serve")
def serve_cmd(
    model: List[str] = typer.Option([], "--model", help="A shipped model's name or a model folder; repeat to serve "
                                                       "several (the first is the default). Default: the shipped model."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; beyond loopback needs --keys."),
    port: int = typer.Option(8000, "--port"),
    keys: Optional[Path] = typer.Option(None, "--keys", help="API keys file (`jewelgan serve-keys add`)."),
    jobs_dir: Path = typer.Option(Path("jewelgan_jobs"), "--jobs-dir", help="Where bulk jobs are kept."),
    device: str = typer.Option("cpu", "--device"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (default: all cores)."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the generators at start (about a minute): "
                                                        "faster answers; images then match `generate --compile`."),
    max_n: int = typer.Option(64, "--max-n", help="Images per request."),
    max_size: int = typer.Option(512, "--max-size", help="Largest output edge in pixels."),
    max_job_n: int = typer.Option(10_000, "--max-job-n", help="Images per bulk job."),
    max_queue: int = typer.Option(128, "--max-queue", help="Images waiting before new requests get 503."),
    rate: float = typer.Option(20.0, "--rate", help="Requests per second per API key (with --keys)."),
    burst: int = typer.Option(40, "--burst", help="Burst size of the per-key rate limit."),
    study: Optional[Path] = typer.Option(None, "--study", help="Also serve this human study's pages "
                                         "(`jewelgan study create`)."),
    public_docs: Optional[bool] = typer.Option(None, "--public-docs/--no-public-docs",
                                               help="/docs and /openapi.json without a key. Default: open without "
                                                    "--keys, for key holders only with them."),
    public_metrics: Optional[bool] = typer.Option(None, "--public-metrics/--no-public-metrics",
                                                  help="/metrics without a key. Default: open without --keys, for "
                                                       "key holders only with them."),
    admin_key: Optional[str] = typer.Option(None, "--admin-key", help="The key (by name) that takes over jobs made "
                                            "before keys were configured. Default: the keys file's first key."),
    max_jobs_per_key: int = typer.Option(10, "--max-jobs-per-key", help="Queued or running bulk jobs per key."),
    max_job_images_per_key: int = typer.Option(50_000, "--max-job-images-per-key",
                                               help="Images a key's queued or running jobs may still have to make."),
    job_ttl: float = typer.Option(168.0, "--job-ttl", help="Hours a finished job and its files are kept (0: keep)."),
    max_upload_pixels: int = typer.Option(40_000_000, "--max-upload-pixels",
                                          help="Largest decoded size of an uploaded photo, checked from its header."),
    heavy_slots: int = typer.Option(2, "--heavy-slots", help="Heavy work at once: an edit takes 2, a try-on or a "
                                    "large upsampling 1; more gets 503 + Retry-After."),
) -> None:
    """Serve the HTTP API (/v1, OpenAPI at /docs), the browser studio (/), /healthz, /readyz and /metrics."""
    import torch
    import uvicorn

    from jewelgan.inference import GenerateError
    from jewelgan.inference import ModelNotFound
    from jewelgan.serve.access import KeysFileError
    from jewelgan.serve.app import create_asgi
    from jewelgan.serve.observability import log_access_to_stderr
    from jewelgan.serve.settings import ServeSettings, SettingsError
    from jewelgan.study.store import StudyError

    if threads:
        torch.set_num_threads(threads)
    settings = ServeSettings(models=model, host=host, port=port, keys_file=keys, jobs_dir=jobs_dir, device=device,
                             compile=compile,
                             max_n=max_n, max_size=max_size, max_job_n=max_job_n, max_queue_images=max_queue,
                             rate=rate, burst=burst, study=study, public_docs=public_docs,
                             public_metrics=public_metrics, admin_key=admin_key, max_jobs_per_key=max_jobs_per_key,
                             max_job_images_per_key=max_job_images_per_key, job_ttl=job_ttl * 3600,
                             max_upload_pixels=max_upload_pixels, heavy_slots=heavy_slots)
    try:
        asgi = create_asgi(settings)
    except (SettingsError, KeysFileError, ModelNotFound, GenerateError, StudyError, ValueError) as e:
        raise fail(str(e), 2)
    # the models, torch and (with --compile) the compiled graphs are millions of long-lived objects; left in
    # the collected generations, each full collection walks them all and stalls every request for ~100 ms
    gc.collect()
    gc.freeze()
    log_access_to_stderr()
    if keys is None:
        typer.echo(f"no --keys: serving on loopback only ({host}), without API keys", err=True)
    closed = [p for p, open_ in (("/docs", settings.docs_open()), ("/metrics", settings.metrics_open())) if not open_]
    if closed:
        typer.echo(f"{' and '.join(closed)} need a key (--public-docs / --public-metrics open them)", err=True)
    typer.echo(f"jewelgan studio on http://{host}:{port}/  (API docs: /docs)", err=True)
    uvicorn.run(asgi, host=host, port=port, access_log=False, log_level="warning", timeout_graceful_shutdown=30)


@keys_app.command("add")
def add_key_cmd(
    name: str = typer.Argument(..., help="Who the key is for (letters, digits, _ . -)."),
    file: Path = typer.Option(..., "--file", help="The keys file (created if missing)."),
) -> None:
    """Make a new API key: its hash goes into FILE, the key is printed once."""
    from jewelgan.serve.access import KeysFileError, add_key

    try:
        key = add_key(file, name)
    except KeysFileError as e:
        raise fail(str(e), 2)
    typer.echo(key)
    typer.echo(f"added key {name!r} to {file} (only its hash is stored; keep the key now)", err=True)
