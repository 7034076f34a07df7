"""Virtual try-on: a cut-out placed on a customer's photo (placement), where from face, pose and hand
landmarks (landmarks, with the optional [tryon] extra), and what lies in front of it (occlusion)."""

from jewelgan.tryon.landmarks import AutoPlacement, NoLandmarks, available, find_front, find_placement
from jewelgan.tryon.placement import (MAX_EDGE, Placement, TryOnError, alpha_centroid, crop_to_piece, load_cutout,
                                      load_photo, pieces_for, place, split_pair, transform, try_on)

__all__ = ["AutoPlacement", "MAX_EDGE", "NoLandmarks", "Placement", "TryOnError", "alpha_centroid", "available",
           "crop_to_piece", "find_front", "find_placement", "load_cutout", "load_photo", "pieces_for", "place",
           "split_pair", "transform", "try_on"]
