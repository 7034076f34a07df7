"""Distribution metrics on real pictures (small drawings made here) and on synthetic Gaussians."""

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from jewelgan.metrics.features import get_extractor
from jewelgan.metrics.fid import feature_stats, fid_from_features, fid_stats_to_features, frechet_distance
from jewelgan.metrics.kid import kid
from jewelgan.metrics.memorization import check_memorization
from jewelgan.metrics.resize import resize

N = 32  # Inception at 299 px runs ~10-15 images/s on this CPU: keep sets small
M = 16  # distorted copies are made of the first M images


def draw_jewels(n: int, seed: int, size: int = 64) -> np.ndarray:
    """Ring- and pendant-like drawings: a metal-coloured band, a gem dot, on a light backdrop."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        bg = tuple(int(v) for v in rng.integers(200, 256, 3))
        im = Image.new("RGB", (size, size), bg)
        d = ImageDraw.Draw(im)
        metal = tuple(int(v) for v in rng.choice([[212, 175, 55], [229, 228, 226], [183, 110, 121], [192, 192, 192]]))
        cx, cy = rng.integers(size // 3, 2 * size // 3, 2)
        r = int(rng.integers(size // 6, size // 3))
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=metal, width=int(rng.integers(2, 6)))
        gem = tuple(int(v) for v in rng.integers(0, 256, 3))
        g = int(rng.integers(2, 7))
        d.ellipse([cx - g, cy - r - g, cx + g, cy - r + g], fill=gem)
        out[i] = np.asarray(im)
    return out


def blur(images: np.ndarray, radius: float) -> np.ndarray:
    if radius == 0:
        return images
    return np.stack([np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius))) for im in images])


def add_noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, images.shape)
    return np.clip(images + noise, 0, 255).round().astype(np.uint8)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def inception():
    return get_extractor("inception")


@pytest.fixture(scope="module")
def sets():
    return {"a": draw_jewels(N, 1), "b": draw_jewels(N, 2)}


@pytest.fixture(scope="module")
def feats(inception, sets):
    a = sets["a"][:M]
    out = {"a": inception.features(sets["a"]), "b": inception.features(sets["b"])}
    for r in (1, 2):
        out[f"blur{r}"] = inception.features(blur(a, r))
    for s in (12, 40):
        out[f"noise{s}"] = inception.features(add_noise(a, s))
    return out


def test_inception_features_shape_and_batch_independence(inception, sets, feats):
    assert feats["a"].shape == (N, 2048) and feats["a"].dtype == np.float32
    assert np.isfinite(feats["a"]).all() and (feats["a"] >= 0).all()  # pool of ReLU outputs
    again = inception.features(sets["a"][:5], batch_size=2)
    np.testing.assert_allclose(again, feats["a"][:5], rtol=1e-4, atol=1e-4)


def test_features_reject_wrong_input(inception):
    with pytest.raises(ValueError, match="uint8 numpy array"):
        inception.features(np.zeros((2, 8, 8, 3), np.float32))


def test_fid_of_set_against_itself_is_zero(feats):
    assert fid_from_features(feats["a"], feats["a"]) == pytest.approx(0.0, abs=1e-3)


def test_fid_grows_with_blur_and_noise(feats):
    a = feats["a"][:M]
    blurs = [fid_from_features(a, feats[k][:M]) for k in ("a", "blur1", "blur2")]
    noises = [fid_from_features(a, feats[k][:M]) for k in ("a", "noise12", "noise40")]
    assert blurs == sorted(blurs) and blurs[1] > 1.0 and blurs[2] > blurs[1] * 1.2, blurs
    assert noises == sorted(noises) and noises[1] > 1.0 and noises[2] > noises[1] * 1.2, noises


def test_kid_near_zero_for_one_distribution_and_positive_for_distortions(feats):
    # two independent draws of the same picture generator vs. a distorted copy of the first
    same, _ = kid(feats["a"][:M], feats["b"][:M], num_subsets=1)
    far, _ = kid(feats["a"][:M], feats["noise40"], num_subsets=1)
    assert far > 0.05 and abs(same) < 0.2 * far, (same, far)


def test_frechet_distance_gaussian_closed_form():
    # 1-D: (m1-m2)^2 + s1 + s2 - 2 sqrt(s1 s2)
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9 + 4 + 1 - 2 * 2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 8))
    y = rng.normal(size=(4000, 8)) * 2 + 1
    # theory: 8*1^2 + 8*(1 + 4 - 2*2) = 16
    assert fid_from_features(x, y) == pytest.approx(16.0, rel=0.1)
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_low_rank_fid_matches_sqrtm():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(300, 40))
    fake = rng.normal(size=(25, 40)) * 1.5 + 0.3  # fewer samples than dimensions: singular covariance
    mu, sigma = feature_stats(real)
    reference = frechet_distance(mu, sigma, *feature_stats(fake))
    assert fid_stats_to_features(mu, sigma, fake) == pytest.approx(reference, rel=1e-4)
    assert fid_from_features(real, fake) == pytest.approx(fid_from_features(fake, real))


def test_feature_stats_are_float64():
    mu, sigma = feature_stats(np.ones((5, 3), np.float32) * np.arange(5)[:, None])
    assert mu.dtype == np.float64 and sigma.shape == (3, 3)
    with pytest.raises(ValueError, match="N>=2"):
        feature_stats(np.zeros((1, 3)))


def test_kid_unbiased_on_gaussians():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    mean, std = kid(x, y, num_subsets=30, subset_size=300)
    # the subset std is the estimator's spread at 300 samples; the mean over 600 samples is tighter
    assert abs(mean) < 2 * std
    shifted, _ = kid(x, y + 0.5, num_subsets=30, subset_size=300)
    assert shifted > 10 * std


def test_memorisation_flags_planted_copy_only(feats):
    gen = feats["b"].copy()
    gen[3] = feats["a"][5]  # an exact copy of training image 5
    res = check_memorization(gen, feats["a"], percentile=1.0)
    assert res.flagged[3] and res.nn_index[3] == 5
    assert res.worst[0][:2] == (3, 5)
    fresh = np.delete(res.flagged, 3)
    assert fresh.sum() <= 1, res.nn_distance  # ~1% expected for fresh samples at the 1st percentile
    assert res.summary()["worst"][0]["ratio"] < 1e-3


def test_memorisation_exact_copy_flagged_even_with_duplicate_training_images(feats):
    train = np.concatenate([feats["a"], feats["a"][:4]])  # duplicates make the percentile 0
    res = check_memorization(feats["a"][:2], train)
    assert res.threshold == 0.0 and res.flagged.all()


def test_tf_bilinear_resize_known_values():
    import torch

    x = torch.tensor([[[[0.0, 10.0]]]]).expand(1, 1, 2, 2)
    y = resize(x, 4, "tf-bilinear")
    # TF1 align_corners=False: source = j * in/out, clamped at the border
    np.testing.assert_allclose(y[0, 0, 0].numpy(), [0, 5, 10, 10])
    const = torch.full((1, 3, 7, 7), 42.0)
    for mode in ("tf-bilinear", "clean"):
        np.testing.assert_allclose(resize(const, 19, mode).numpy(), 42.0, atol=1e-3)
    with pytest.raises(ValueError, match="resize mode"):
        resize(const, 9, "lanczos3")


def test_efficientnet_cross_check_features():
    ext = get_extractor("efficientnet-lite0")
    imgs = draw_jewels(6, 3, 32)
    f = ext.features(imgs)
    assert f.shape == (6, 1280) and np.isfinite(f).all()
    assert ext.input_size == 224 and ext.has_classifier


def test_is_effnet_scores_identical_images_1_and_varied_images_higher():
    from jewelgan.metrics.inception_score import inception_score

    ext = get_extractor("efficientnet-lite0")
    varied = draw_jewels(20, 5, 64)
    probs = ext.class_probs(varied)
    assert probs.shape == (20, 1000) and np.allclose(probs.sum(1), 1, atol=1e-4)
    same = np.repeat(varied[:1], 20, axis=0)
    assert inception_score(ext.class_probs(same))[0] == pytest.approx(1.0, abs=1e-4)
    assert inception_score(probs, splits=2)[0] > 1.05


def test_unknown_extractor_and_inception_score_unavailable(inception):
    with pytest.raises(ValueError, match="unknown feature network"):
        get_extractor("vgg")
    with pytest.raises(Exception, match="official weights"):
        inception.class_probs(np.zeros((1, 8, 8, 3), np.uint8))
