"""Datasets: label schema, the archive format and photo preparation (training batches: train/data.py)."""

from jewelgan.data.archive import Archive, ArchiveError, ArchiveWriter
from jewelgan.data.labels import MISSING, LabelSchema

__all__ = ["Archive", "ArchiveError", "ArchiveWriter", "LabelSchema", "MISSING"]
