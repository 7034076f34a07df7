"""The attribute schema: named attributes, each with a vocabulary of string values.

Labels are stored as small integers (the index into the attribute's vocabulary), with MISSING (-1)
for an unknown value, so that partly labelled shops can still train.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MISSING = -1


@dataclass
class LabelSchema:
    """Ordered attributes and their value vocabularies, e.g. {"metal": ["gold", "silver"]}."""

    attributes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)

    def num_values(self, name: str) -> int:
        return len(self.attributes[name])

    def encode(self, values: dict[str, str | None], *, grow: bool = False) -> np.ndarray:
        """Map {attribute: value} to an int16 row; unknown attributes or None become MISSING.

        With grow=True, unseen values are appended to the vocabulary (used while preparing).
        """
        row = np.full(len(self.attributes), MISSING, dtype=np.int16)
        for name, value in values.items():
            if name not in self.attributes:
                if not grow:
                    raise KeyError(f"unknown attribute {name!r}; known: {', '.join(self.names) or 'none'}")
                self.attributes[name] = []
                row = np.append(row, np.int16(MISSING))
            if value is None or value == "":
                continue
            vocab = self.attributes[name]
            if value not in vocab:
                if not grow:
                    raise ValueError(
                        f"unknown value {value!r} for attribute {name!r}; known: {', '.join(vocab)}"
                    )
                vocab.append(value)
            row[self.names.index(name)] = vocab.index(value)
        return row

    def decode(self, row: np.ndarray) -> dict[str, str | None]:
        return {
            name: (None if int(i) == MISSING else self.attributes[name][int(i)])
            for name, i in zip(self.names, row)
        }

    def parse_attrs(self, pairs: list[str]) -> dict[str, str]:
        """Parse CLI-style ["metal=rose_gold", ...] and check each against the schema."""
        out: dict[str, str] = {}
        for pair in pairs:
            if "=" not in pair:
                raise ValueError(f"attribute {pair!r} must look like name=value")
            name, value = (s.strip() for s in pair.split("=", 1))
            if name not in self.attributes:
                raise ValueError(f"unknown attribute {name!r}; known: {', '.join(self.names) or 'none'}")
            if value not in self.attributes[name]:
                known = ", ".join(self.attributes[name])
                raise ValueError(f"unknown value {value!r} for attribute {name!r}; known: {known}")
            out[name] = value
        return out

    def to_json(self) -> dict:
        return {"attributes": {k: list(v) for k, v in self.attributes.items()}}

    @classmethod
    def from_json(cls, obj: dict) -> "LabelSchema":
        attrs = obj.get("attributes", {})
        if not isinstance(attrs, dict) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in attrs.values()
        ):
            raise ValueError("label schema must map attribute names to lists of strings")
        return cls({str(k): list(v) for k, v in attrs.items()})
