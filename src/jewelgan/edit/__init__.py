"""Editing a shop's own piece: invert its photo into the style generator, then draw it with other attributes;
interpolate between two inverted pieces."""

from jewelgan.edit.inversion import (EditError, Inversion, PhotoLoss, check_invertible, complete_labels, edit,
                                     edit_sheet, frozen_features, interpolate_inversions, invert, label_row,
                                     load_photo, perceptual_distance, photo_mask, psnr, render_ws)

__all__ = ["EditError", "Inversion", "PhotoLoss", "check_invertible", "complete_labels", "edit", "edit_sheet",
           "frozen_features", "interpolate_inversions", "invert", "label_row", "load_photo", "perceptual_distance",
           "photo_mask", "psnr", "render_ws"]
