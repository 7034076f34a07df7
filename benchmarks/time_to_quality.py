"""Time to quality: train dcgan and style on the same archive for the same wall-clock budget, then
score both with the evaluation suite (FID, KID on Inception features; attribute accuracy with a
classifier trained on the archive) and print the figures side by side.

    python benchmarks/time_to_quality.py --data studio64.jga --minutes 30
    python benchmarks/time_to_quality.py --render 3000 --minutes 10 --parallel   # render studio data first

--parallel trains the models at the same time, one thread each, so a machine shared with other work
loads both equally (each then has one core for the budget instead of all of them); without it they
run one after the other with all threads (the default: each model has the whole machine for its budget).
The table names the CPU (model, cores, ISA flags): the same budget buys half the images on an AVX2 chip
that it does on one with AVX-512 and bf16, and time_to_quality.json keeps it with the protocol.
The FID here is against the training archive, at its resolution, with --eval-n generated images;
compare numbers only within one invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def model_config(model: str, args) -> dict:
    """TrainConfig fields for one contestant: the seed's DCGAN defaults with the style preset's speed settings,
    the style model's preset (each with the fields --dcgan-set / --style-set put over them)."""
    common = {"data": str(args.data), "minutes": args.minutes, "out": str(args.out / "runs"), "name": model,
              "seed": args.seed, "progress": False, "grid_every": 10.0, "ckpt_every": 20.0, "log_every": 20,
              "threads": args.threads}
    if model == "style":
        from jewelgan.models.presets import preset_config

        return {**preset_config(args.preset), **json.loads(args.style_set), **common, "res": args.res}
    # the engine's speed settings are not the model's: dcgan gets the precision and memory layout the style
    # preset uses (bf16 where this machine runs it faster), or it would race with one hand tied
    speed = {"bf16": "auto", "channels_last": True}
    return {"model": model, **speed, **json.loads(args.dcgan_set), **common, "res": args.res}


def train_one(model: str, args) -> Path:
    from jewelgan.config import TrainConfig
    from jewelgan.train.loop import Trainer

    run = args.out / "runs" / model
    wanted = model_config(model, args)
    if (run / "checkpoints").is_dir() and args.reuse:
        # a stale run left under OUT would otherwise be scored as this configuration
        saved = TrainConfig.load(run / "config.yaml").to_dict()
        skip = {"out", "name", "progress", "threads", "model_args"}  # model_args is saved resolved
        differ = [k for k, v in wanted.items() if k not in skip and saved.get(k) != v
                  and not (k == "bf16" and v == "auto")]  # saved resolved
        if differ:
            sys.exit(f"error: {run} was trained with other settings ({', '.join(differ)}); use a new --out")
        print(f"[{model}] reusing {run}", flush=True)
        return run
    cfg = TrainConfig(**wanted)
    t0 = time.time()
    trainer = Trainer(cfg)
    run = trainer.run()
    imgs = trainer.step * cfg.batch
    print(f"[{model}] {trainer.step} steps, {imgs} images in {time.time() - t0:.0f} s wall "
          f"({imgs / max(trainer.elapsed_s, 1e-9):.1f} img/s over the training loop) -> {run}", flush=True)
    (run / "ttq_train.json").write_text(json.dumps({"steps": trainer.step, "images": imgs,
                                                    "elapsed_s": trainer.elapsed_s,
                                                    "threads": args.threads}))
    return run


def evaluate(run: Path, args) -> dict:
    from jewelgan.inference import load_generator
    from jewelgan.metrics.api import evaluate_generator

    G, schema, info = load_generator(run)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] + (["attr"] if args.classifier else [])
    t0 = time.time()
    res = evaluate_generator(G, schema, args.data, n=args.eval_n, metrics=metrics,
                             cache_dir=str(args.out / "metric-cache"), classifier=args.classifier,
                             n_per_value=args.n_per_value, seed=1)
    res["eval_s"] = time.time() - t0
    train = json.loads((run / "ttq_train.json").read_text()) if (run / "ttq_train.json").is_file() else {}
    res.update({"kimg": info["kimg"], "img_s": train.get("images", 0) / max(train.get("elapsed_s", 0), 1e-9)})
    return res


def ensure_data(args) -> None:
    if args.data.exists():
        return
    if not args.render:
        sys.exit(f"error: {args.data} does not exist (pass --render N to render studio data there)")
    from jewelgan.studio.dataset import render_dataset

    print(f"rendering {args.render} studio images at {args.res} px into {args.data}", flush=True)
    render_dataset(args.data, args.render, res=args.res, seed=0, workers=2)


def ensure_classifier(args) -> None:
    if args.classifier is None or (args.classifier / "classifier.json").is_file():
        return
    from jewelgan.metrics.attributes import train_classifier

    print(f"training the attribute classifier into {args.classifier}", flush=True)
    info = train_classifier(args.data, args.classifier, epochs=args.classifier_epochs, log=lambda s: None)
    print("classifier held-out accuracy (clean / degraded): " + ", ".join(
        f"{k} {v['accuracy']:.3f} / {info['heldout_degraded'][k]['accuracy']:.3f}" for k, v in info["heldout"].items()),
        flush=True)


def print_table(results: dict[str, dict], args, protocol: dict) -> str:
    keys = ["fid", "kid", "mem_flagged_share", "kimg", "img_s"] + sorted({k for r in results.values() for k in r if k.startswith("attr_acc/")})
    models = list(results)
    from jewelgan.runs.rundir import describe_cpu

    lines = [f"time to quality: {args.minutes:g} min per model, {args.res} px, data {args.data}, "
             f"eval n={args.eval_n}, threads={protocol['threads']}"
             f"{', both at once' if args.parallel else ', one after the other'}",
             f"machine: {describe_cpu(protocol['cpu'])}",
             f"{'metric':<26}" + "".join(f"{m:>14}" for m in models)]
    for k in keys:
        row = f"{k:<26}"
        for m in models:
            v = results[m].get(k)
            row += f"{v:>14.4f}" if isinstance(v, float) and k.startswith(("kid", "attr")) else \
                   f"{v:>14.2f}" if isinstance(v, (int, float)) else f"{'-':>14}"
        lines.append(row)
    if "fid" in keys and {"dcgan", "style"} <= set(models):
        ratio = results["style"]["fid"] / results["dcgan"]["fid"]
        lines.append(f"FID ratio style/dcgan: {ratio:.3f} (goal <= 0.5)")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("studio64.jga"))
    p.add_argument("--render", type=int, default=0, help="render this many studio images if --data is missing")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--models", default="dcgan,style")
    p.add_argument("--preset", default="cpu-64", help="preset of the style model")
    p.add_argument("--style-set", default="{}", help='JSON of TrainConfig fields over the preset, e.g. \'{"augment": "ada:bg"}\'')
    p.add_argument("--dcgan-set", default="{}", help='JSON of TrainConfig fields over dcgan\'s defaults, e.g. \'{"bf16": true}\'')
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--out", type=Path, default=Path("ttq"))
    p.add_argument("--eval-n", type=int, default=2000)
    p.add_argument("--metrics", default="fid,kid", help="distribution metrics; add mem for the near-copy share")
    p.add_argument("--n-per-value", type=int, default=64, help="images per attribute value for attribute accuracy")
    p.add_argument("--classifier", type=Path, default=None,
                   help="attribute classifier folder (trained on --data when missing); default OUT/classifier")
    p.add_argument("--no-attr", action="store_true", help="skip attribute accuracy")
    p.add_argument("--classifier-epochs", type=int, default=15)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parallel", action="store_true", help="train the models at once, one thread each")
    p.add_argument("--reuse", action="store_true", help="evaluate existing runs in OUT instead of training")
    p.add_argument("--only-train", default=None, help=argparse.SUPPRESS)  # worker mode for --parallel
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.classifier is None and not args.no_attr:
        args.classifier = args.out / "classifier"
    if args.no_attr:
        args.classifier = None
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    if args.only_train:
        train_one(args.only_train, args)
        return
    ensure_data(args)
    args.threads = args.threads or (1 if args.parallel else None)
    import torch

    if args.threads:  # two OpenMP threads on a loaded 2-core machine can be many times slower than one
        torch.set_num_threads(args.threads)
    if args.parallel:
        base = [sys.executable, __file__, "--data", str(args.data), "--minutes", str(args.minutes), "--preset",
                args.preset, "--style-set", args.style_set, "--dcgan-set", args.dcgan_set, "--res", str(args.res), "--out", str(args.out), "--threads", str(args.threads),
                "--seed", str(args.seed)] + (["--reuse"] if args.reuse else [])
        procs = [subprocess.Popen(base + ["--only-train", m], env=dict(os.environ)) for m in models]
        ensure_classifier(args)  # meanwhile: both trainings see the same extra load
        codes = [pr.wait() for pr in procs]
        if any(codes):
            sys.exit(f"error: training failed (exit codes {codes})")
        runs = {m: args.out / "runs" / m for m in models}
        torch.set_num_threads(os.cpu_count() or 1)  # training is over: evaluate with the whole machine
    else:
        runs = {m: train_one(m, args) for m in models}
    ensure_classifier(args)
    results = {m: evaluate(r, args) for m, r in runs.items()}
    from jewelgan.runs.rundir import cpu_summary

    protocol = {"minutes": args.minutes, "threads": args.threads or torch.get_num_threads(),
                "parallel": args.parallel, "seed": args.seed, "cpu": cpu_summary()}
    text = print_table(results, args, protocol)
    (args.out / "time_to_quality.json").write_text(json.dumps({**results, "protocol": protocol}, indent=1))
    (args.out / "time_to_quality.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
