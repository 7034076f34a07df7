"""`jewelgan report RUN_DIR`: one self-contained HTML file about a training run.

Sections: metric curves over training (inline SVG drawn here: no plotting dependency), sample grids
for every attribute value, the generated images closest to a training image (near-copy check), the
last evaluation, and the resolved config. Images are embedded as base64 PNG, so the file can be
mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from pathlib import Path

import numpy as np

from jewelgan.grid import make_grid
from jewelgan.runs.rundir import RunDir

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")
SKIP_KEYS = {"step", "kimg", "kind", "time", "wall", "eval_s", "epoch"}


class ReportError(Exception):
    """The run directory cannot be reported on."""


# ---------------------------------------------------------------------------- pieces
def png_data_uri(image) -> str:
    """PIL image or HxWx3 uint8 array -> data:image/png;base64,..."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _nice(v: float) -> str:
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    return f"{v:.3g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.2e}"


def svg_plot(series: dict[str, tuple[list[float], list[float]]], title: str, xlabel: str = "kimg",
             width: int = 440, height: int = 230) -> str:
    """A small line chart as inline SVG: one polyline per series, min/max ticks, a legend."""
    pts = {k: [(float(x), float(y)) for x, y in zip(*v) if math.isfinite(float(x)) and math.isfinite(float(y))]
           for k, v in series.items()}
    pts = {k: v for k, v in pts.items() if v}
    esc = html.escape
    if not pts:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="40"><text x="4" y="20">{esc(title)}: no data</text></svg>'
    xs = [p[0] for v in pts.values() for p in v]
    ys = [p[1] for v in pts.values() for p in v]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    left, right, top, bottom = 58, 10, 24, 34
    pw, ph = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">',
             f'<text x="{left}" y="14" font-size="12" font-weight="bold">{esc(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for frac in (0.25, 0.5, 0.75):  # light grid lines
        y = top + frac * ph
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#eee"/>')
    parts += [f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{_nice(y1)}</text>',
              f'<text x="{left - 4}" y="{top + ph}" text-anchor="end">{_nice(y0)}</text>',
              f'<text x="{left}" y="{top + ph + 13}">{_nice(x0)}</text>',
              f'<text x="{left + pw}" y="{top + ph + 13}" text-anchor="end">{_nice(x1)}</text>',
              f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle">{esc(xlabel)}</text>']
    for i, (name, p) in enumerate(pts.items()):
        color = PALETTE[i % len(PALETTE)]
        if len(p) == 1:
            parts.append(f'<circle cx="{sx(p[0][0]):.1f}" cy="{sy(p[0][1]):.1f}" r="3" fill="{color}"/>')
        else:
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in p)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        parts.append(f'<text x="{left + pw - 4}" y="{top + 12 + 12 * i}" text-anchor="end" fill="{color}">{esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def metric_curves(records: list[dict], max_points: int = 400) -> list[str]:
    """One SVG per evaluation metric, then one with the training losses."""
    svgs = []
    evals = [r for r in records if r.get("kind") == "eval"]
    keys = sorted({k for r in evals for k, v in r.items() if isinstance(v, (int, float)) and k not in SKIP_KEYS})
    for k in keys:
        xs = [r.get("kimg", r.get("step", i)) for i, r in enumerate(evals) if k in r]
        ys = [r[k] for r in evals if k in r]
        svgs.append(svg_plot({k: (xs, ys)}, f"{k} (evaluation)"))
    spreads = [r for r in records if r.get("kind") == "value_spread"]  # train/value_guard.py
    vkeys = sorted({k for r in spreads for k in r if "=" in k})
    if vkeys:
        svgs.append(svg_plot({k: ([r["kimg"] for r in spreads if k in r], [r[k] for r in spreads if k in r])
                              for k in vkeys}, "spread per attribute value (samples over training images)"))
    train = [r for r in records if r.get("kind", "train") == "train"]
    if train:
        stride = max(1, len(train) // max_points)
        train = train[::stride]
        lkeys = sorted({k for r in train for k, v in r.items()
                        if isinstance(v, (int, float)) and k not in SKIP_KEYS and "loss" in k.lower()})
        if lkeys:
            series = {k: ([r.get("kimg", i) for i, r in enumerate(train) if k in r], [r[k] for r in train if k in r])
                      for k in lkeys}
            svgs.append(svg_plot(series, "training losses"))
        other = sorted({k for r in train for k, v in r.items() if isinstance(v, (int, float))
                        and k not in SKIP_KEYS and "loss" not in k.lower()})
        for k in other[:8]:
            svgs.append(svg_plot({k: ([r.get("kimg", i) for i, r in enumerate(train) if k in r],
                                      [r[k] for r in train if k in r])}, k))
    return svgs


# ---------------------------------------------------------------------------- the report
def _attribute_grids(model, per_value: int, seed: int) -> list[tuple[str, list[tuple[str, str]]]]:
    schema = model.schema

    sections = []
    for a, name in enumerate(schema.names):
        rows = []
        for v, value in enumerate(schema.attributes[name]):
            images = model.generate(per_value, {name: value}, seed=seed + 10_000 * a + 100 * v)
            tile = max(64, images.shape[1])
            rows.append((value, png_data_uri(make_grid(images, ncol=per_value, tile=tile))))
        sections.append((name, rows))
    if not schema.names:
        images = model.generate(per_value * 2, seed=seed)
        sections.append(("unconditional", [("", png_data_uri(make_grid(images, ncol=per_value, tile=max(64, images.shape[1]))))]))
    return sections


def _nearest_pairs(model, archive_path, n: int, feature_net: str, device, seed: int, top: int = 8):
    from jewelgan.data.archive import Archive
    from jewelgan.metrics.cache import archive_images, default_cache_dir, reference_stats
    from jewelgan.metrics.features import get_extractor
    from jewelgan.metrics.memorization import check_memorization

    archive = Archive(archive_path)
    gen = model.generate(n, seed=seed)
    ext = get_extractor(feature_net, device)
    ref = reference_stats(archive, ext, gen.shape[1], cache_dir=default_cache_dir())
    mem = check_memorization(ext.features(gen), ref.features, top=top)
    pairs = []
    for g, t, d in mem.worst:
        real = archive_images(archive, np.array([ref.indices[t]]), gen.shape[1])[0]
        pair = make_grid(np.stack([gen[g], real]), ncol=2, tile=max(96, gen.shape[1]),
                         captions=[f"generated #{g}", f"training #{int(ref.indices[t])}"])
        pairs.append({"uri": png_data_uri(pair), "distance": d, "ratio": d / max(mem.train_nn_median, 1e-12),
                      "flagged": d < mem.threshold or d <= 1e-4 * mem.train_nn_median})
    return mem, pairs


CSS = """body{font-family:sans-serif;margin:24px;max-width:1100px;color:#222}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
.plots svg{margin:4px}table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}
pre{background:#f6f6f6;padding:10px;overflow:auto;font-size:12px}.flag{color:#c00;font-weight:bold}
.pair{display:inline-block;margin:6px;text-align:center;font-size:12px}img{image-rendering:pixelated}"""


def write_report(run_dir, out=None, archive=None, per_value: int = 8, nn_samples: int = 64,
                 feature_net: str = "inception", device="cpu", seed: int = 0, study=None) -> Path:
    """study: a human-study file of this run's images (default: RUN_DIR/study.db when it exists)."""
    rd = RunDir(run_dir)
    run = rd.path
    if not run.is_dir():
        raise ReportError(f"{run}: no such run directory")
    out = Path(out) if out else run / "report.html"
    esc = html.escape
    records = rd.metrics()
    config_text = rd.config_text()
    run_info = rd.provenance()
    if not records and not config_text:
        raise ReportError(f"{run}: neither metrics.jsonl nor config.yaml found; is this a jewelgan run directory?")
    body = [f"<h1>jewelgan report: {esc(run.name)}</h1>",
            f"<p>Generated {time.strftime('%Y-%m-%d %H:%M')} from <code>{esc(str(run))}</code>.</p>"]
    notes = [f"At {r['kimg']:.1f} kimg the value guard found {r['detail']}." for r in records
             if r.get("event") == "value_collapse"]
    model = info = None
    try:
        from jewelgan.inference import load_model

        model = load_model(run, device=device)
        info = model.info
        body.append(f"<p>Model <b>{esc(str(info.get('model')))}</b> at {info.get('res')} px, "
                    f"{float(info.get('kimg', 0)):.1f} kimg (step {info.get('step')}), EMA weights.</p>")
    except Exception as e:  # noqa: BLE001 - a run without a checkpoint still has curves and a config
        notes.append(f"No generator could be loaded ({type(e).__name__}: {e}); sample sections are skipped.")

    body.append("<h2>Metrics over training</h2>")
    svgs = metric_curves(records)
    body.append('<div class="plots">' + "".join(svgs) + "</div>" if svgs else "<p>No metrics logged yet.</p>")
    evals = [r for r in records if r.get("kind") == "eval"]
    if evals:
        last = evals[-1]
        rows = "".join(f"<tr><td>{esc(k)}</td><td>{_nice(v)}</td></tr>" for k, v in last.items()
                       if isinstance(v, (int, float)) and k not in ("step",))
        body.append(f"<p>Last evaluation:</p><table>{rows}</table>")

    if model is not None:
        body.append(f"<h2>Samples per attribute value</h2><p>{per_value} samples each; other attributes drawn "
                    "from the training label distribution.</p>")
        for name, rows in _attribute_grids(model, per_value, seed):
            body.append(f"<h3>{esc(name)}</h3><table>")
            body += [f'<tr><th>{esc(v)}</th><td><img alt="{esc(name)}={esc(v)}" src="{uri}"></td></tr>'
                     for v, uri in rows]
            body.append("</table>")
        archive_path = archive or run_info.get("archive", {}).get("path")
        if nn_samples > 0 and archive_path:
            try:
                mem, pairs = _nearest_pairs(model, archive_path, nn_samples, feature_net, device, seed + 7)
                body.append(f"<h2>Nearest training images</h2><p>{nn_samples} generated images, {feature_net} "
                            f"features. Near-copy rule: distance below the {mem.percentile:g}th percentile of the "
                            f"training images' own nearest-neighbour distances ({_nice(mem.threshold)}). Flagged: "
                            f"<b>{mem.flagged.sum()}</b> of {len(mem.flagged)} ({100 * mem.flagged_share:.1f}%; "
                            f"~{mem.percentile:g}% expected from a generator that does not copy). "
                            "Ratio = distance / median training nearest-neighbour distance.</p>")
                for p in pairs:
                    flag = ' <span class="flag">near-copy</span>' if p["flagged"] else ""
                    body.append(f'<div class="pair"><img alt="nearest pair" src="{p["uri"]}"><br>'
                                f'ratio {p["ratio"]:.3f}{flag}</div>')
            except Exception as e:  # noqa: BLE001 - e.g. the archive moved: say so and keep the report
                notes.append(f"Nearest-neighbour section skipped: {type(e).__name__}: {e}")
        elif nn_samples > 0:
            notes.append("Nearest-neighbour section skipped: the run does not name its archive (pass --data).")

    grids = rd.grids()
    if grids:
        from PIL import Image

        with Image.open(grids[-1]) as im:
            body.append(f"<h2>Latest training grid</h2><p>{esc(grids[-1].name)}</p>"
                        f'<img alt="training grid" src="{png_data_uri(im.convert("RGB"))}">')
    study = Path(study) if study else (run / "study.db" if (run / "study.db").is_file() else None)
    if study is not None:
        from jewelgan.study import StudyStore, format_results, summarise

        res = summarise(StudyStore(study).rows())
        body.append(f"<h2>Human study</h2><p>Real or generated, from <code>{esc(str(study))}</code> "
                    "(protocol and statistics: docs/evaluation.md).</p>"
                    f"<pre>{esc(format_results(res)) if res['answers'] else 'No answers yet.'}</pre>")
    if notes:
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    if run_info:
        body.append(f"<h2>Provenance</h2><pre>{esc(json.dumps(run_info, indent=1))}</pre>")
    body.append(f"<h2>Config</h2><pre>{esc(config_text) or 'config.yaml not found'}</pre>")
    doc = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>jewelgan report: {esc(run.name)}</title><style>{CSS}</style></head><body>\n"
           + "\n".join(body) + "\n</body></html>\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(out)
    return out
