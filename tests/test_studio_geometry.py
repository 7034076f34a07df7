"""Studio building blocks: cut stones are closed convex solids, light through them is conserved."""

import numpy as np
import pytest

from jewelgan.studio import sdf
from jewelgan.studio.gems import CUTS, GEMS, shade_gem


@pytest.mark.parametrize("name", sorted(CUTS))
def test_cuts_are_closed_solids_with_table_and_culet(name):
    cut = CUTS[name]
    d = lambda p: sdf.convex(np.asarray(p, np.float32), cut.normals, cut.offsets)  # noqa: E731
    assert d([[0, 0, 0]])[0] < 0
    assert abs(d([[0, cut.top, 0]])[0]) < 1e-4, "the table is at cut.top"
    assert abs(d([[0, cut.bottom, 0]])[0]) < 0.05, "the culet is at cut.bottom"
    far = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    far = 3 * far / np.linalg.norm(far, axis=1, keepdims=True)
    assert (d(far) > 0.5).all(), "bounded in every direction"
    # the coarse hull used by the tracer must contain the stone (its SDF is never larger)
    pts = np.random.default_rng(1).uniform(-1.5, 1.5, size=(2000, 3)).astype(np.float32)
    coarse = sdf.convex(pts, cut.normals[cut.coarse], cut.offsets[cut.coarse])
    assert (coarse <= d(pts) + 1e-6).all()


def test_white_light_through_a_diamond_stays_white_and_bounded():
    cut = CUTS["round"]
    rng = np.random.default_rng(0)
    xz = rng.uniform(-0.4, 0.4, size=(500, 2)).astype(np.float32)
    p = np.stack([xz[:, 0], np.full(500, cut.top, np.float32), xz[:, 1]], axis=1)
    d = np.tile(np.array([0, -1, 0], np.float32), (500, 1))
    white = lambda dirs: np.ones((len(dirs), 3), np.float32)  # noqa: E731
    out = shade_gem(p, d, cut, 1.0, GEMS["diamond"], white)
    assert out.shape == (500, 3) and (out <= 1.0 + 1e-4).all() and (out > 0.9).all()
    ruby = shade_gem(p, d, cut, 1.0, GEMS["ruby"], white)
    assert (ruby[:, 0] > ruby[:, 1] + 0.2).mean() > 0.9, "ruby passes red and absorbs green"


def test_repeat_angle_folds_points_into_one_cell():
    a = np.linspace(0, 2 * np.pi, 50, endpoint=False)
    p = np.stack([np.cos(a), np.zeros(50), np.sin(a)], axis=1).astype(np.float32)
    q, k = sdf.repeat_angle(p, 10)
    assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)
    assert (np.abs(np.arctan2(q[:, 2], q[:, 0])) <= np.pi / 10 + 1e-5).all()
    assert set(k.tolist()) == set(range(10))
