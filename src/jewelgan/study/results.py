"""A study's results: how often people took generated images for real, with honest intervals.

- fool rate: the share of answers on generated images that said "real" (HYPE's measure: 50 % means
  people cannot tell; a good generator approaches the rate at which real images are called real);
- accuracy on real images: the share of answers on real images that said "real" (the ceiling);
- both with a 95 % Wilson score interval (correct near 0 and 1 and for small n, unlike p +- 1.96 se);
- per attribute value, per participant, response times, detail quality (1-5) where given;
- agreement between participants: Fleiss' kappa over the images every participant answered
  (1 = all agree, 0 = what chance gives).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float, float]:
    """(share, low, high) with the Wilson score interval; (nan, 0, 1) for n = 0."""
    if n == 0:
        return float("nan"), 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def fleiss_kappa(table: np.ndarray) -> float:
    """table: (items, categories) counts, every item rated by the same number of raters (>= 2)."""
    table = np.asarray(table, np.float64)
    if table.ndim != 2 or len(table) == 0:
        return float("nan")
    raters = table.sum(1)
    if raters.min() < 2 or raters.min() != raters.max():
        raise ValueError("every item needs the same number (>= 2) of ratings")
    m = raters[0]
    p_item = ((table * table).sum(1) - m) / (m * (m - 1))
    p_cat = table.sum(0) / table.sum()
    p_bar, p_e = p_item.mean(), (p_cat * p_cat).sum()
    return float("nan") if p_e == 1 else float((p_bar - p_e) / (1 - p_e))


NO_ANSWERS = "no answers yet"


def summarise(rows: list[dict]) -> dict:
    """Answers (StudyStore.rows()) -> the results dictionary `jewelgan study results` prints. A figure with nothing
    to count yet is None (JSON null, never NaN, which is not JSON), and a share of no answers carries
    "note": "no answers yet", as does the whole result before the first answer."""
    gen = [r for r in rows if r["kind"] == "generated"]
    real = [r for r in rows if r["kind"] == "real"]

    def rate(subset):
        k = sum(r["real"] for r in subset)
        p, lo, hi = wilson(k, len(subset))
        out = {"n": len(subset), "said_real": k, "share": _number(p), "ci95": [lo, hi]}
        return out if subset else {**out, "note": NO_ANSWERS}

    def median_ms(subset):
        return float(np.median([r["ms"] for r in subset])) if subset else None

    out = {"answers": len(rows), **({} if rows else {"note": NO_ANSWERS}),
           "fool_rate": rate(gen), "real_called_real": rate(real),
           "accuracy": (sum(r["real"] for r in real) + sum(not r["real"] for r in gen)) / len(rows) if rows else None}
    by_value: dict = defaultdict(lambda: defaultdict(list))
    for r in gen:
        for name, value in r["attributes"].items():
            by_value[name][value].append(r)
    out["fool_rate_by_attribute"] = {name: {v: rate(rs) for v, rs in sorted(values.items())}
                                     for name, values in by_value.items()}
    people = defaultdict(list)
    for r in rows:
        people[r["name"]].append(r)
    out["participants"] = {
        name: {"answers": len(rs), "accuracy": float(np.mean([r["real"] == (r["kind"] == "real") for r in rs])),
               "fool_rate": rate([r for r in rs if r["kind"] == "generated"])["share"],
               "median_ms": median_ms(rs)}
        for name, rs in people.items()}
    out["median_ms"] = {"real": median_ms(real), "generated": median_ms(gen)}
    quality = {kind: [r["quality"] for r in rs if r["quality"] is not None] for kind, rs in (("real", real), ("generated", gen))}
    out["quality"] = {kind: (float(np.mean(q)) if q else None) for kind, q in quality.items()}
    # agreement: the images answered by every participant
    tokens = {r["token"] for r in rows}
    per_image = defaultdict(dict)
    for r in rows:
        per_image[r["image"]][r["token"]] = r["real"]
    shared = [v for v in per_image.values() if len(v) == len(tokens)]
    if len(tokens) >= 2 and shared:
        table = np.array([[sum(v.values()), len(v) - sum(v.values())] for v in shared])
        out["agreement"] = {"fleiss_kappa": _number(fleiss_kappa(table)), "images": len(shared),
                            "raters": len(tokens)}
    else:
        out["agreement"] = {"fleiss_kappa": None, "images": len(shared), "raters": len(tokens)}
    return out


def _number(x: float) -> float | None:
    """A statistic as JSON can carry it: None where it is undefined (NaN)."""
    return None if math.isnan(x) else x


def _share(x: float | None, fmt: str = ".0%") -> str:
    """A share as a percentage, or "no answers yet" where there were none to count (never "nan%")."""
    return NO_ANSWERS if x is None or math.isnan(x) else format(x, fmt)


def _ms(x: float | None) -> str:
    return NO_ANSWERS if x is None or math.isnan(x) else f"{x:.0f} ms"


def format_results(res: dict) -> str:
    """The human-readable table."""
    def pct(d):
        return (f"{d['share']:.1%} [{d['ci95'][0]:.1%}, {d['ci95'][1]:.1%}] ({d['said_real']}/{d['n']})"
                if d["n"] else NO_ANSWERS)

    lines = [f"answers: {res['answers']}" + ("" if res["answers"] else f" ({NO_ANSWERS})"),
             f"fool rate (generated judged real): {pct(res['fool_rate'])}",
             f"real judged real:                  {pct(res['real_called_real'])}",
             f"accuracy (right calls):            {_share(res['accuracy'], '.1%')}",
             f"median response time: real {_ms(res['median_ms']['real'])}, generated "
             f"{_ms(res['median_ms']['generated'])}"]
    if any(v is not None for v in res["quality"].values()):
        lines.append("detail quality (1-5): " + ", ".join(f"{k} {v:.2f}" for k, v in res["quality"].items()
                                                          if v is not None))
    a = res["agreement"]
    if a["fleiss_kappa"] is not None:
        kappa = f"{a['fleiss_kappa']:.2f}"
    elif a["raters"] >= 2 and a["images"]:
        kappa = "undefined (every answer on these images was the same)"
    else:
        kappa = "not yet (needs two participants who answered the same images)"
    lines.append(f"agreement: Fleiss' kappa {kappa} over {a['images']} images answered by all "
                 f"{a['raters']} participants")
    lines.append("fool rate by attribute value:")
    for name, values in res["fool_rate_by_attribute"].items():
        lines.append(f"  {name}: " + "; ".join(f"{v} {_share(d['share'])} (n={d['n']})" for v, d in values.items()))
    lines.append("participants:")
    for name, p in res["participants"].items():
        lines.append(f"  {name}: {p['answers']} answers, accuracy {_share(p['accuracy'])}, fool rate "
                     f"{_share(p['fool_rate'])}, median {_ms(p['median_ms'])}")
    return "\n".join(lines)
