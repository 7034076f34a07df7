"""Precision/recall/density/coverage against their known values on synthetic Gaussians (Naeem et al. 2020)."""

import numpy as np
import pytest

from jewelgan.metrics.inception_score import inception_score
from jewelgan.metrics.prdc import kth_neighbour_radii, pairwise_distances, prdc


@pytest.fixture(scope="module")
def gauss():
    rng = np.random.default_rng(0)
    return rng.normal(size=(1000, 32)), rng.normal(size=(1000, 32))


def test_same_distribution_density_and_coverage(gauss):
    real, fake = gauss
    r = prdc(real, fake, k=5)
    assert r["density"] == pytest.approx(1.0, abs=0.1)
    assert r["coverage"] == pytest.approx(1 - 0.5 ** 5, abs=0.03)  # expectation for equal distributions
    assert r["precision"] > 0.6 and r["recall"] > 0.6


def test_same_distribution_large_k_gives_precision_recall_one(gauss):
    real, fake = gauss
    r = prdc(real, fake, k=50)
    assert r["precision"] > 0.97 and r["recall"] > 0.97


def test_disjoint_distributions_score_zero(gauss):
    real, fake = gauss
    r = prdc(real, fake + 100.0, k=5)
    assert r == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_mode_collapse_keeps_precision_but_loses_recall(gauss):
    real, fake = gauss
    rng = np.random.default_rng(5)
    # 1000 fakes around only 20 real samples: faithful but not diverse
    collapsed = real[rng.integers(0, 20, len(fake))] + rng.normal(scale=0.01, size=fake.shape)
    r = prdc(real, collapsed, k=5)
    assert r["precision"] > 0.95
    assert r["recall"] < 0.1 and r["coverage"] < 0.3


def test_knn_radii_and_distances():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(kth_neighbour_radii(x, 1), [1, 1, 2, 4])
    np.testing.assert_allclose(pairwise_distances(x[:2], x[2:], chunk=1), [[3, 7], [2, 6]])
    with pytest.raises(ValueError, match="more than k"):
        kth_neighbour_radii(x, 4)


def test_inception_score_bounds():
    confident = np.eye(10)[np.arange(100) % 10]  # every class equally, each image certain
    assert inception_score(confident, splits=5)[0] == pytest.approx(10.0, rel=1e-6)
    assert inception_score(np.full((100, 10), 0.1), splits=5)[0] == pytest.approx(1.0)
