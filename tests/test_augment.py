"""DiffAugment and ADA: differentiable, the same op for real and fake, ADA's p moves the right way."""

import pytest
import torch

from jewelgan.data.augment import ADA, DiffAugment, build_augment

# small models run many tiny ops: on a shared 2-core machine two OpenMP threads were up to 100x slower
pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed):
    return torch.Generator().manual_seed(seed)


def images(b=4, res=16, seed=0):
    return torch.rand(b, 3, res, res, generator=gen(seed)) * 2 - 1


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diffaugment_is_differentiable(policy):
    x = images().requires_grad_(True)
    y = DiffAugment(policy)(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_diffaugment_changes_images_and_draws_new_params_each_call():
    aug, x = DiffAugment(), images()
    a, b = aug(x), aug(x)
    assert not torch.allclose(a, x)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("policy", ["translation", "cutout", "translation,cutout"])
def test_same_random_state_applies_the_identical_op_to_real_and_fake(policy):
    # translation and cutout are linear in the image (zero fill), so applying the same
    # parameters to real, fake and real + fake must satisfy aug(r + f) == aug(r) + aug(f)
    aug = DiffAugment(policy)
    real, fake = images(seed=1), images(seed=2)
    out_r, out_f, out_sum = aug(real, gen(7)), aug(fake, gen(7)), aug(real + fake, gen(7))
    assert torch.allclose(out_sum, out_r + out_f, atol=1e-6)
    # and the cutout / translation holes sit at the same places for both
    assert torch.equal(out_r == 0, out_f == 0)


def test_same_random_state_same_colour_transform():
    aug = DiffAugment("color")
    x = images(seed=3)
    assert torch.equal(aug(x, gen(5)), aug(x.clone(), gen(5)))
    assert not torch.equal(aug(x, gen(5)), aug(x, gen(6)))


def test_translation_moves_content_by_whole_pixels():
    aug = DiffAugment("translation")
    x = torch.zeros(1, 3, 16, 16)
    x[0, :, 8, 8] = 1.0
    y = aug(x, gen(11))
    assert (y == 1.0).sum() == 3  # the single bright pixel survives, shifted by at most 2 px
    i, j = (y[0, 0] == 1.0).nonzero()[0].tolist()
    assert abs(i - 8) <= 2 and abs(j - 8) <= 2


def test_cutout_zeroes_a_square_of_half_the_size():
    x = torch.ones(64, 3, 16, 16)
    y = DiffAugment("cutout")(x, gen(3))
    zeros = (y[:, 0] == 0).sum(dim=(1, 2))
    assert zeros.max() == 64  # an 8x8 hole when it lies fully inside
    assert (zeros > 0).all()


def test_unknown_policy_is_reported():
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'blur'"):
        DiffAugment("color,blur")


def test_ada_p_rises_when_d_is_overconfident_on_reals():
    ada = ADA(speed_images=1000, interval=1)
    for _ in range(5):
        ada.update(torch.full((10,), 3.0))  # sign +1 on every real: r_t = 1 > 0.6
    assert ada.p == pytest.approx(5 * 10 / 1000)


def test_ada_p_falls_otherwise_and_stays_in_range():
    ada = ADA(speed_images=1000, interval=1, p=0.03)
    ada.update(torch.tensor([1.0, -1.0, -2.0, 1.0]))  # r_t = 0 < 0.6
    assert ada.p == pytest.approx(0.03 - 4 / 1000)
    for _ in range(20):
        ada.update(-torch.ones(10))
    assert ada.p == 0.0


def test_ada_accumulates_over_its_interval():
    ada = ADA(speed_images=1000, interval=4)
    for _ in range(3):
        ada.update(torch.ones(8))
    assert ada.p == 0.0  # not yet
    ada.update(torch.ones(8))
    assert ada.p == pytest.approx(32 / 1000)


def test_ada_state_is_checkpointed():
    ada = ADA(speed_images=100, interval=1)
    ada.update(torch.ones(10))
    fresh = ADA(speed_images=100, interval=1)
    fresh.load_state_dict(ada.state_dict())
    assert fresh.p == ada.p > 0


def test_ada_with_p_zero_is_identity_and_p_one_is_differentiable():
    x = images().requires_grad_(True)
    assert torch.equal(ADA(p=0.0)(x), x)
    y = ADA(p=1.0)(x, gen(0))
    assert y.shape == x.shape and not torch.allclose(y, x)
    y.square().sum().backward()
    assert x.grad.abs().sum() > 0


def test_ada_same_random_state_same_op():
    ada = ADA(p=0.8)
    real, fake = images(seed=1), images(seed=2)
    # all ADA ops are linear in the image up to the colour means: check pixel geometry with masks
    a = ada(torch.ones_like(real), gen(9))
    b = ada(torch.ones_like(fake), gen(9))
    assert torch.equal(a, b)
    assert torch.equal(ada(real, gen(9)), ada(real.clone(), gen(9)))
    assert not torch.equal(ada(real, gen(9)), ada(real, gen(10)))


def test_build_augment_specs():
    assert build_augment("none") is None and build_augment(None) is None
    assert build_augment("diffaug").policy == ["color", "translation", "cutout"]
    assert build_augment("diffaug:color").policy == ["color"]
    ada = build_augment("ada:bg,target=0.7,speed=20000")
    assert isinstance(ada, ADA) and ada.target == 0.7 and ada.speed_images == 20000
    assert "hue" not in ada.ops and "xflip" in ada.ops
    with pytest.raises(ValueError, match="unknown ADA option 'sped'"):
        build_augment("ada:sped=3")
    with pytest.raises(ValueError, match="expected none, diffaug"):
        build_augment("mixup")
