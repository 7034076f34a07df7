"""Virtual try-on: a cut-out placed on a customer's photo (placement), where from face, pose and hand
landmarks (landmarks, with the optional [tryon] extra), what lies in front of it (occlusion), and the
policy joining them that the CLI and the server share (fitting)."""

from jewelgan.tryon.fitting import DEFAULT_SCALE, Fitting, fit_piece
from jewelgan.tryon.landmarks import AutoPlacement, NoLandmarks, available, find_front, find_placement
from jewelgan.tryon.placement import (MAX_EDGE, Placement, TryOnError, alpha_centroid, crop_to_piece, load_cutout,
                                      load_photo, pieces_for, place, split_pair, transform, try_on)

__all__ = ["AutoPlacement", "DEFAULT_SCALE", "Fitting", "MAX_EDGE", "NoLandmarks", "Placement", "TryOnError",
           "alpha_centroid", "available", "crop_to_piece", "find_front", "find_placement", "fit_piece", "load_cutout",
           "load_photo", "pieces_for", "place", "split_pair", "transform", "try_on"]
