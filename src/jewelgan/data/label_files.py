"""Read a label file (CSV, JSON or JSON Lines) that maps image paths to several named attributes.

A bad row never stops a prepare: it is returned with where it is (file and line number) and why,
and the run reports it. Only a file that cannot be read at all (wrong encoding, broken JSON
syntax, a header without attribute columns) raises LabelFileError.

    CSV / TSV   header row; the column named file/path/filename/image (else the first) holds the
                path relative to the source folder; every other column is an attribute; an empty
                cell is a missing value.
    JSON        {"ring/a.jpg": {"category": "ring", "metal": null}, ...}
                or [{"file": "ring/a.jpg", "category": "ring"}, ...]
    JSON Lines  one {"file": ..., attribute: value, ...} object per line.
"""

from __future__ import annotations

import csv
import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

FILE_COLUMNS = ("file", "path", "filename", "image", "relpath")


class LabelFileError(Exception):
    """The label file as a whole cannot be used."""


@dataclass
class LabelTable:
    attributes: list[str]
    rows: dict[str, dict[str, str | None]] = field(default_factory=dict)  # relative path -> labels
    where: dict[str, str] = field(default_factory=dict)                   # relative path -> "file:line N"
    bad_rows: list[tuple[str, str]] = field(default_factory=list)         # ("file:line N", why)


def _relative(raw: str, root: Path) -> str:
    """Normalise a path cell to the POSIX form used for archive sources; ValueError if unusable."""
    s = raw.strip()
    if not s:
        raise ValueError("empty file name")
    if "\\" in s and "/" not in s:
        s = PureWindowsPath(s).as_posix()  # a spreadsheet made on Windows
    p = Path(s)
    if p.is_absolute():
        try:
            s = p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            raise ValueError(f"absolute path {raw.strip()!r} is outside the source folder") from None
    s = posixpath.normpath(s)
    if s == "." or s.startswith("../") or s == "..":
        raise ValueError(f"path {raw.strip()!r} points outside the source folder")
    return str(PurePosixPath(s))


def _value(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return v.strip() or None
    raise ValueError(f"value {json.dumps(v)[:40]} must be a string, number or null")


def _add(table: LabelTable, where: str, raw_path, values: dict[str, str | None], root: Path) -> None:
    if not isinstance(raw_path, str):
        table.bad_rows.append((where, "file name missing or not a string"))
        return
    try:
        rel = _relative(raw_path, root)
    except ValueError as e:
        table.bad_rows.append((where, str(e)))
        return
    if rel in table.rows:
        table.bad_rows.append((where, f"{rel!r} is already labelled at {table.where[rel]}"))
        return
    table.rows[rel] = values
    table.where[rel] = where


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # utf-8-sig: Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as e:
        raise LabelFileError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise LabelFileError(f"{path}: cannot read label file ({e.strerror})") from None


def _read_csv(path: Path, root: Path) -> LabelTable:
    text = _read_text(path)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(text.splitlines(keepends=True), dialect)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise LabelFileError(f"{path}: empty label file (expected a header row)") from None
    lower = [h.lower() for h in header]
    file_col = next((lower.index(c) for c in FILE_COLUMNS if c in lower), 0)
    attrs = [h for i, h in enumerate(header) if i != file_col]
    if not attrs:
        raise LabelFileError(f"{path}: header {header} has no attribute columns besides the file column")
    if any(not a for a in attrs) or len(set(attrs)) != len(attrs):
        raise LabelFileError(f"{path}: header {header} has an empty or repeated column name")
    table = LabelTable(attrs)
    name = path.name
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            table.bad_rows.append((f"{name}:line {reader.line_num}", f"unreadable CSV row ({e})"))
            continue
        where = f"{name}:line {reader.line_num}"
        if not row or all(not c.strip() for c in row):
            continue  # blank line
        if len(row) != len(header):
            table.bad_rows.append((where, f"expected {len(header)} fields ({', '.join(header)}), got {len(row)}"))
            continue
        values = {a: (c.strip() or None) for a, c in zip(header, row) if a in attrs}
        values = {a: values[a] for a in attrs}
        _add(table, where, row[file_col], values, root)
    return table


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _json_entries(text: str):
    """Yield (line number, key or None, value) for each top-level entry of a valid JSON document.

    json.loads gives no positions, so this walks the top level with raw_decode to know on which line
    each entry starts: a bad entry is then reported by line number, like a CSV row.
    """
    dec = json.JSONDecoder()
    i = _skip_ws(text, 0)
    is_obj = text[i] == "{"
    i = _skip_ws(text, i + 1)
    while i < len(text) and text[i] not in "]}":
        line = text.count("\n", 0, i) + 1
        key = None
        if is_obj:
            key, i = dec.raw_decode(text, i)
            i = _skip_ws(text, _skip_ws(text, i) + 1)  # past the ':'
        value, i = dec.raw_decode(text, i)
        yield line, key, value
        i = _skip_ws(text, i)
        if i < len(text) and text[i] == ",":
            i = _skip_ws(text, i + 1)


def _read_json(path: Path, root: Path, lines: bool) -> LabelTable:
    text = _read_text(path)
    name = path.name
    entries = []  # (where, raw path, dict of attributes) or (where, None, error)
    if lines:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                entries.append((f"{name}:line {n}", None, f"invalid JSON ({e.msg} at column {e.colno})"))
                continue
            entries.append((f"{name}:line {n}", obj, None))
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise LabelFileError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        if not isinstance(doc, (dict, list)):
            raise LabelFileError(f"{path}: expected an object {{path: {{attribute: value}}}} or a list of objects")
        for n, key, value in _json_entries(text):
            where = f"{name}:line {n}"
            if key is not None:
                value = {"file": key, **value} if isinstance(value, dict) else value
            entries.append((where, value, None))
    attrs: list[str] = []
    parsed = []
    bad: list[tuple[str, str]] = []
    for where, obj, err in entries:
        if err is not None:
            bad.append((where, err))
            continue
        if not isinstance(obj, dict):
            bad.append((where, "entry must be an object of attribute: value pairs"))
            continue
        file_key = next((k for k in obj if k.lower() in FILE_COLUMNS), None)
        if file_key is None:
            bad.append((where, f"entry has no file name (one of: {', '.join(FILE_COLUMNS)})"))
            continue
        try:
            values = {str(k).strip(): _value(v) for k, v in obj.items() if k != file_key}
        except ValueError as e:
            bad.append((where, str(e)))
            continue
        if any(not k for k in values):
            bad.append((where, "empty attribute name"))
            continue
        attrs += [k for k in values if k not in attrs]
        parsed.append((where, obj[file_key], values))
    if not attrs and not bad and parsed:
        raise LabelFileError(f"{path}: entries name files but no attributes")
    table = LabelTable(attrs, bad_rows=bad)
    for where, raw, values in parsed:
        _add(table, where, raw, {a: values.get(a) for a in attrs}, root)
    return table


def read_label_file(path: str | Path, root: str | Path) -> LabelTable:
    """Parse a CSV/TSV, JSON or JSON Lines label file whose paths are relative to `root`."""
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise LabelFileError(f"{path}: label file not found")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_csv(path, root)
    if suffix in (".json", ".jsonl", ".ndjson"):
        return _read_json(path, root, lines=suffix != ".json")
    raise LabelFileError(f"{path}: unknown label file type {suffix!r} (use .csv, .tsv, .json or .jsonl)")
