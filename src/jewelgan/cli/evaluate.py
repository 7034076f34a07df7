"""CLI: `jewelgan evaluate`, `jewelgan report`, `jewelgan classifier train`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from jewelgan.cli.app import app, classifier_app, fail


def _threads(n: Optional[int]) -> None:
    import os

    import torch

    # default: every core this process may use (torch's own default can pick fewer under cgroups)
    torch.set_num_threads(n or len(os.sched_getaffinity(0)))


@app.command()
def evaluate(
    run: Optional[Path] = typer.Option(None, "--run", help="Run directory (latest checkpoint is used)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Exported model directory."),
    data: Path = typer.Option(..., "--data", help="Dataset archive the model was trained on (the reference)."),
    n: int = typer.Option(10_000, "--n", help="Number of generated images."),
    metrics: str = typer.Option("fid,kid,pr,mem", "--metrics",
                                help="Comma list of fid,kid,pr,effnet,mem,attr,is (attr is added when --classifier is given)."),
    classifier: Optional[Path] = typer.Option(None, "--classifier", help="Attribute classifier dir (jewelgan classifier train)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the full results as JSON here."),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights",
                                                     help="Official inception-2015-12-05.pt or pt_inception-2015-12-05-6726825d.pth (enables IS)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Reference statistics cache (default ~/.cache/jewelgan/refstats)."),
    which: str = typer.Option("ema", "--which", help="ema or G weights."),
    noise: Optional[str] = typer.Option(None, "--noise",
                                        help="Style model only: const (fixed noise buffers) or none; default: the run's."),
    device: str = typer.Option("cpu", "--device"),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: all available)."),
    per_value: Optional[str] = typer.Option(None, "--per-value",
                                            help="Attributes (comma list) to score per value: spread, FID, KID, "
                                                 "accuracy (adds the values metric; default: the first attribute)."),
) -> None:
    """Score a trained generator against its dataset: FID/KID, precision/recall, attributes, memorisation."""
    if (run is None) == (model is None):
        raise fail("give exactly one of --run RUN_DIR or --model DIR")
    if n < 2:
        raise fail(f"--n must be at least 2, got {n}")
    from jewelgan.metrics.api import evaluate_run, parse_metrics

    try:
        names = parse_metrics(metrics)
    except ValueError as e:
        raise fail(f"--metrics: {e}")
    attributes = [a.strip() for a in per_value.split(",") if a.strip()] if per_value else None
    if attributes and "values" not in names:
        names.append("values")
    if classifier is not None and "attr" not in names:
        names.append("attr")
    if "attr" in names and classifier is None:
        raise fail("--metrics attr needs --classifier DIR (train one with `jewelgan classifier train`)")
    _threads(threads)
    try:
        result = evaluate_run(run or model, data, n=n, metrics=names, device=device, cache_dir=cache_dir,
                              classifier=classifier, inception_weights=inception_weights, which=which,
                              seed=seed, out=out, noise=noise, per_value=attributes)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise fail(str(e))
    except Exception as e:  # noqa: BLE001 - loader/archive errors of other areas: one line, not a traceback
        if type(e).__name__ in ("GenerateError", "ArchiveError", "FeatureError", "CheckpointError"):
            raise fail(str(e))
        raise
    for key, value in result["metrics"].items():
        if "=" in key:
            continue  # per value: the table below
        typer.echo(f"{key:24s} {value:.4f}" if isinstance(value, float) else f"{key:24s} {value}")
    for name, s in result["details"].get("attr", {}).items():
        degraded = s.get("heldout_degraded_accuracy")
        typer.echo(f"attribute {name}: accuracy {s['accuracy']:.3f} (chance {s['chance']:.3f}, "
                   f"classifier on held-out reals {s['heldout_accuracy']:.3f}"
                   + (f", degraded {degraded:.3f})" if degraded is not None else ")"))
    for name, values in result["details"].get("values", {}).items():
        typer.echo(f"per {name} value (FID is biased upward at small n: compare a value only with itself):")
        for value, e in values.items():
            acc = f"  accuracy {e['attr_acc']:.3f}" if "attr_acc" in e else ""
            typer.echo(f"  {value:<16} {e['images']:>6} images{' (small n)' if e['small_n'] else '':<10}  spread "
                       f"{e['spread']:.2f}  FID {e['fid']:7.1f}  KID {e['kid']:.4f} +- {e['kid_std']:.4f}{acc}")
    if out is not None:
        typer.echo(f"wrote {out}")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    out: Optional[Path] = typer.Option(None, "--out", help="HTML file (default RUN_DIR/report.html)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Archive for nearest-neighbour pairs (default: the run's)."),
    per_value: int = typer.Option(8, "--per-value", help="Samples per attribute value in the grids."),
    nn_samples: int = typer.Option(64, "--nn-samples", help="Generated images searched for near-copies (0 = skip)."),
    features: str = typer.Option("inception", "--features", help="Feature network for nearest neighbours."),
    device: str = typer.Option("cpu", "--device"),
    threads: Optional[int] = typer.Option(None, "--threads"),
    study: Optional[Path] = typer.Option(None, "--study", help="A human study of this run (`jewelgan study "
                                         "create`); default: RUN_DIR/study.db if present."),
) -> None:
    """Write one self-contained HTML report: metric curves, sample grids, nearest neighbours, study, config."""
    from jewelgan.metrics.report import ReportError, write_report
    from jewelgan.study import StudyError

    _threads(threads)
    try:
        path = write_report(run_dir, out, archive=data, per_value=per_value, nn_samples=nn_samples,
                            feature_net=features, device=device, study=study)
    except (ReportError, ValueError, FileNotFoundError, StudyError) as e:
        raise fail(str(e))
    typer.echo(f"wrote {path}")


@classifier_app.command("train")
def classifier_train(
    data: Path = typer.Option(..., "--data", help="Labelled dataset archive."),
    out: Path = typer.Option(..., "--out", help="Output folder (classifier.safetensors + classifier.json)."),
    epochs: int = typer.Option(20, "--epochs"),
    res: Optional[int] = typer.Option(None, "--res", help="Input resolution (default min(64, archive))."),
    batch: int = typer.Option(32, "--batch"),
    val_fraction: float = typer.Option(0.15, "--val-fraction", help="Held-out share of the archive."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device"),
    threads: Optional[int] = typer.Option(None, "--threads"),
    degrade: bool = typer.Option(True, "--degrade/--no-degrade",
                                 help="Also train on blurred, noisy, re-exposed images, so that generated images are "
                                      "read by their attributes rather than by their pixel-exactness."),
) -> None:
    """Train the attribute classifier used by `evaluate --metrics attr`; prints held-out accuracy
    on clean and on degraded reals."""
    from jewelgan.data.archive import ArchiveError
    from jewelgan.metrics.attributes import train_classifier

    if epochs < 1:
        raise fail(f"--epochs must be at least 1, got {epochs}")
    if not 0 < val_fraction < 1:
        raise fail(f"--val-fraction must be between 0 and 1, got {val_fraction}")
    _threads(threads)
    try:
        info = train_classifier(data, out, epochs=epochs, batch_size=batch, resolution=res,
                                val_fraction=val_fraction, seed=seed, device=device, robust=degrade, log=typer.echo)
    except (ArchiveError, ValueError) as e:
        raise fail(str(e))
    for name, h in info["heldout"].items():
        typer.echo(f"held-out {name:12s} accuracy {h['accuracy']:.3f}  degraded {info['heldout_degraded'][name]['accuracy']:.3f}"
                   f"  (n={h['n']}, chance {h['chance']:.3f})")
    typer.echo(f"wrote {out}")
