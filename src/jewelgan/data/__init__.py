"""Datasets: label schema, the archive format, photo preparation and the torch Dataset."""

from jewelgan.data.archive import Archive, ArchiveError, ArchiveWriter
from jewelgan.data.labels import MISSING, LabelSchema

__all__ = ["Archive", "ArchiveError", "ArchiveWriter", "LabelSchema", "MISSING"]
