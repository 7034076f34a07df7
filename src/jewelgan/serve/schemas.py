"""Request bodies of the HTTP API (pydantic): their types and ranges are what /docs and the OpenAPI
schema show. Caps that `jewelgan serve` can change (n, size) are checked by the handlers, which name
the cap in the error. Every body is strict: "4" or true is not an integer, 1 or "true" not a boolean (a
client that sends the wrong type hears about it instead of getting a quiet guess)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

SEED_MAX = 2**62
Format = Literal["png", "webp", "jpeg", "jpg"]
Output = Literal["image", "zip", "json"]


class _Common(BaseModel):
    # a misspelt field is an error, not silently ignored; no coercion of strings or booleans to numbers
    model_config = ConfigDict(extra="forbid", strict=True)

    model: Optional[str] = Field(None, description="A model's name from GET /v1/models; default: the server's first.")
    attributes: dict[str, str] = Field(default_factory=dict,
                                       description="Fixed attributes, e.g. {\"metal\": \"rose_gold\"}; the others "
                                                   "are drawn as in training.")
    truncation: float = Field(1.0, ge=0.0, le=1.0, description="psi: 1 = full variety, lower = closer to typical.")
    transparent: bool = Field(False, description="RGBA cut-outs (png/webp; the model must draw alpha).")
    format: Format = "png"
    size: Optional[int] = Field(None, ge=8, description="Output edge in pixels: one of the model's sizes (GET "
                                                         "/v1/models: its upsampling stages); default: its own.")
    resize: bool = Field(False, description="Allow a size no stage reaches: the nearest smaller size the model "
                                            "draws, resampled (Lanczos).")


class _Images(_Common):
    output: Output = Field("image", description="image (one image, or a sheet for several), zip (images + "
                                                "manifest.jsonl) or json (data URLs with seeds and attributes).")


class GenerateRequest(_Images):
    n: int = Field(1, ge=1, description="How many images; image i uses seed + i.")
    seed: Optional[int] = Field(None, ge=0, le=SEED_MAX, description="Default: a random one (returned).")


class VariantsRequest(_Images):
    attribute: str = Field(..., description="The attribute to step through all its values, e.g. metal.")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="The piece: the image this seed gives.")


class InterpolateRequest(_Images):
    seed_a: int = Field(..., ge=0, le=SEED_MAX)
    seed_b: int = Field(..., ge=0, le=SEED_MAX)
    steps: int = Field(8, ge=2, description="Images from a to b, both ends included.")


class JobRequest(_Common):
    n: int = Field(..., ge=1, description="How many images; image i uses seed + i.")
    seed: int = Field(0, ge=0, le=SEED_MAX)
