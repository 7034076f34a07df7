import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from jewelgan.metrics.matting import (connectivity_error, gradient_error, haze_share, mse, sad, solid_share)


def _piece(size=64):
    """A disc of solid metal with a stone in it and a soft one-pixel rim, on backdrop."""
    v, u = np.mgrid[0:size, 0:size]
    r = np.hypot(u - size / 2, v - size / 2)
    alpha = np.clip(size / 4 - r + 0.5, 0, 1).astype(np.float32)
    material = np.where(alpha > 0, 1, 0).astype(np.uint8)
    material[r < size / 10] = 2
    return alpha, material


def test_perfect_prediction_scores_zero_error_and_full_solid():
    alpha, material = _piece()
    assert sad(alpha, alpha) == 0
    assert mse(alpha, alpha) == 0
    assert gradient_error(alpha, alpha) == 0
    assert connectivity_error(alpha, alpha) == 0
    assert solid_share(alpha, alpha, material) == 1
    assert haze_share(alpha, alpha) == 0


def test_hand_computed_sad_and_mse():
    true = np.array([[0.0, 1.0], [0.5, 0.25]])
    pred = np.array([[0.5, 1.0], [0.25, 0.25]])
    # |diff| = 0.5, 0, 0.25, 0 -> SAD 0.75 / 1000; squared 0.25 + 0.0625 over 4 pixels
    assert sad(pred, true) == pytest.approx(0.75e-3)
    assert mse(pred, true) == pytest.approx(0.3125 / 4)
    region = np.array([[True, False], [False, False]])
    assert sad(pred, true, region) == pytest.approx(0.5e-3)
    assert mse(pred, true, region) == pytest.approx(0.25)


def test_blur_and_holes_score_worse_on_gradient_and_connectivity():
    alpha, _ = _piece()
    blurred = gaussian_filter(alpha, 2.0)
    holed = alpha.copy()
    holed[30:34, 20:44] = 0.0  # a band cut through the piece
    holed[24:26, 24:26] = 0.0
    for bad in (blurred, holed):
        assert gradient_error(bad, alpha) > 0.001
        assert connectivity_error(bad, alpha) > 0.001
    # a matte a little low everywhere stays connected and costs little; cut in two, the half that falls off
    # the largest component is disconnected and its whole shortfall counts
    low = alpha * 0.95
    cut = low.copy()
    cut[:, 31:33] = 0.0
    assert connectivity_error(low, alpha) < 0.01
    assert connectivity_error(cut, alpha) > connectivity_error(low, alpha) + 0.05


def test_solid_share_falls_when_stone_goes_translucent():
    alpha, material = _piece()
    pred = alpha.copy()
    stone = material == 2
    pred[stone] = 0.5
    solid = (alpha >= 0.999) & (material > 0)
    share = solid_share(pred, alpha, material)
    assert share == pytest.approx(1 - stone.sum() / solid.sum())
    assert share < 1
    assert math.isnan(solid_share(alpha, np.zeros_like(alpha), material))


def test_haze_share_counts_faint_alpha_only():
    alpha, _ = _piece()
    pred = alpha.copy()
    backdrop = alpha == 0
    rows = np.nonzero(backdrop.any(axis=1))[0]
    pred[rows[0]][backdrop[rows[0]]] = 0.02  # one faint row of backdrop
    pred[rows[1]][backdrop[rows[1]]] = 0.3  # one clearly wrong row, not haze
    expected = backdrop[rows[0]].sum() / backdrop.sum()
    assert haze_share(pred, alpha) == pytest.approx(expected)
    assert math.isnan(haze_share(np.ones((4, 4)), np.ones((4, 4))))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        sad(np.zeros((4, 4)), np.zeros((4, 5)))
