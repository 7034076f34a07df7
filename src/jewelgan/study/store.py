"""The study file: one SQLite database holding the images, the participants and their answers.

Durable by construction: WAL journal with synchronous=FULL, one transaction per answer, so an answer
that was acknowledged survives a crash of the server or the machine, and a participant who closes the
tab resumes where they stopped. Which images are generated is stored here and never leaves through
the participant-facing calls: an image is known to them by a random id only.
"""

from __future__ import annotations

import json
import random
import secrets
import sqlite3
import threading
import time
from pathlib import Path

FORMAT, VERSION = "jewelgan.study", 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('test', 'calibration')),
    kind TEXT NOT NULL CHECK (kind IN ('real', 'generated')),
    attributes TEXT NOT NULL,
    source TEXT NOT NULL,
    png BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS participants (
    token TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    seed INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    token TEXT NOT NULL REFERENCES participants(token),
    image TEXT NOT NULL REFERENCES images(id),
    judged_real INTEGER NOT NULL CHECK (judged_real IN (0, 1)),
    quality INTEGER CHECK (quality BETWEEN 1 AND 5),
    ms INTEGER NOT NULL CHECK (ms >= 0),
    at REAL NOT NULL,
    PRIMARY KEY (token, image)
);
"""


class StudyError(Exception):
    """Bad use of a study; status is the HTTP code a server answers with."""

    def __init__(self, message: str, status: int = 422, field: str | None = None):
        super().__init__(message)
        self.status, self.field = status, field


class StudyStore:
    """Thread-safe access to one study file (one connection, one lock: answers are tiny)."""

    def __init__(self, path: str | Path, create: bool = False):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise StudyError(f"{self.path}: no such study (make one with `jewelgan study create`)", 404)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        if create:
            self._db.executescript(SCHEMA)
            self._set_meta({"format": FORMAT, "version": VERSION})
        else:
            try:
                meta = self.meta()
            except sqlite3.DatabaseError as e:
                raise StudyError(f"{self.path}: not a study file ({e})") from None
            if meta.get("format") != FORMAT or meta.get("version") != VERSION:
                raise StudyError(f"{self.path}: not a jewelgan study of version {VERSION} (format {meta.get('format')!r})")

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ set-up
    def _set_meta(self, values: dict) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                 [(k, json.dumps(v)) for k, v in values.items()])
            self._db.execute("COMMIT")

    def set_meta(self, **values) -> None:
        self._set_meta(values)

    def meta(self) -> dict:
        with self._lock:
            return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def add_images(self, rows: list[tuple[str, str, dict, str, bytes]]) -> None:
        """rows of (role, kind, attributes, source, png bytes), in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO images VALUES (?, ?, ?, ?, ?, ?)",
                                 [(secrets.token_hex(8), role, kind, json.dumps(attrs), source, png)
                                  for role, kind, attrs, source, png in rows])
            self._db.execute("COMMIT")

    def invite(self, names: list[str]) -> list[str]:
        """A token per participant (the secret in their link)."""
        tokens = [secrets.token_urlsafe(12) for _ in names]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO participants VALUES (?, ?, ?, ?)",
                                 [(t, n, secrets.randbelow(2**31), time.time()) for t, n in zip(tokens, names)])
            self._db.execute("COMMIT")
        return tokens

    # ------------------------------------------------------------------ what a participant sees
    def participant(self, token: str) -> dict:
        with self._lock:
            row = self._db.execute("SELECT token, name, seed FROM participants WHERE token = ?", (token,)).fetchone()
        if row is None:
            raise StudyError("unknown study link (check the token in the address)", 404, "token")
        return {"token": row[0], "name": row[1], "seed": row[2]}

    def order(self, token: str) -> list[str]:
        """The participant's own shuffle of the test images (fixed by their seed, so a resume keeps it)."""
        seed = self.participant(token)["seed"]
        with self._lock:
            ids = sorted(r[0] for r in self._db.execute("SELECT id FROM images WHERE role = 'test'"))
        random.Random(seed).shuffle(ids)
        return ids

    def calibration(self, token: str) -> list[dict]:
        """The labelled examples shown first (their kind is the point of showing them)."""
        self.participant(token)
        with self._lock:
            rows = self._db.execute("SELECT id, kind, png FROM images WHERE role = 'calibration' ORDER BY id").fetchall()
        return [{"image": i, "kind": k, "png": p} for i, k, p in rows]

    def next_image(self, token: str) -> dict:
        """The first test image this participant has not answered: {image, png, index, total} or {done}."""
        order = self.order(token)
        with self._lock:
            done = {r[0] for r in self._db.execute("SELECT image FROM answers WHERE token = ?", (token,))}
        for k, image in enumerate(order):
            if image not in done:
                with self._lock:
                    png = self._db.execute("SELECT png FROM images WHERE id = ?", (image,)).fetchone()[0]
                return {"image": image, "png": png, "index": k, "total": len(order), "answered": len(done)}
        return {"done": True, "answered": len(done), "total": len(order)}

    def answer(self, token: str, image: str, judged_real: bool, quality: int | None, ms: int) -> int:
        """Store one answer durably; returns how many this participant has given. A second answer for the
        same image is refused (409), as is an image that is not a test image of this study (422)."""
        self.participant(token)
        if quality is not None and not 1 <= int(quality) <= 5:
            raise StudyError("quality must be 1 to 5", 422, "quality")
        if ms < 0:
            raise StudyError("ms must be >= 0", 422, "ms")
        with self._lock:
            role = self._db.execute("SELECT role FROM images WHERE id = ?", (image,)).fetchone()
            if role is None or role[0] != "test":
                raise StudyError(f"image {image!r} is not an image of this study", 422, "image")
            try:
                self._db.execute("BEGIN")
                self._db.execute("INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                                 (token, image, int(bool(judged_real)), quality, int(ms), time.time()))
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                raise StudyError(f"image {image!r} was answered already (one answer per image)", 409, "image") from None
            return self._db.execute("SELECT COUNT(*) FROM answers WHERE token = ?", (token,)).fetchone()[0]

    # ------------------------------------------------------------------ for the results
    def rows(self) -> list[dict]:
        """Every answer with its image's kind and attributes (results only; never served to participants)."""
        with self._lock:
            cur = self._db.execute(
                "SELECT a.token, p.name, a.image, i.kind, i.attributes, a.judged_real, a.quality, a.ms "
                "FROM answers a JOIN images i ON i.id = a.image JOIN participants p ON p.token = a.token "
                "ORDER BY a.at")
            return [{"token": t, "name": n, "image": im, "kind": k, "attributes": json.loads(at), "real": bool(j),
                     "quality": q, "ms": ms} for t, n, im, k, at, j, q, ms in cur]

    def counts(self) -> dict:
        with self._lock:
            images = dict(self._db.execute("SELECT kind, COUNT(*) FROM images WHERE role = 'test' GROUP BY kind"))
            people = self._db.execute("SELECT COUNT(*) FROM participants").fetchone()[0]
        return {"images": images, "participants": people}

    def tokens(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._db.execute("SELECT token, name FROM participants ORDER BY created"))
