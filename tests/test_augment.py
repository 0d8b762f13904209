"""Batched augmentation: Keras' ranges, seeded draws, border fill, nothing when switched off."""

from __future__ import annotations

import torch

from imgclf.augment import random_affine
from imgclf.models.classifier import resize_square


def batch(n: int = 8, size: int = 16) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(n, 3, size, size) * 255


def test_no_ranges_and_no_flip_leave_the_batch_untouched(make_params) -> None:
    params = make_params(
        augment__rotation=0, augment__zoom=0, augment__width_shift=0, augment__height_shift=0,
        augment__shear=0, augment__horizontal_flip=False,
    ).augment  # fmt: skip
    images = batch()
    assert random_affine(images, params, torch.Generator().manual_seed(1), 16) is images


def test_flip_alone_mirrors_about_half_of_the_images(make_params) -> None:
    params = make_params(
        augment__rotation=0, augment__zoom=0, augment__width_shift=0, augment__height_shift=0,
        augment__shear=0, augment__horizontal_flip=True,
    ).augment  # fmt: skip
    images = batch(64)
    out = random_affine(images, params, torch.Generator().manual_seed(1), 16)
    mirrored = [torch.allclose(o, i.flip(2), atol=1e-3) for o, i in zip(out, images, strict=True)]
    same = [torch.allclose(o, i, atol=1e-3) for o, i in zip(out, images, strict=True)]
    assert all(m or s for m, s in zip(mirrored, same, strict=True))
    assert 16 < sum(mirrored) < 48


def test_the_same_generator_seed_gives_the_same_batch(make_params) -> None:
    params = make_params().augment
    images = batch()
    first = random_affine(images, params, torch.Generator().manual_seed(7), 16)
    second = random_affine(images, params, torch.Generator().manual_seed(7), 16)
    other = random_affine(images, params, torch.Generator().manual_seed(8), 16)
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert first.shape == images.shape


def test_nearest_fill_repeats_the_border_instead_of_black(make_params) -> None:
    params = make_params(augment__rotation=30, augment__fill_mode="nearest").augment
    images = torch.full((16, 3, 16, 16), 200.0)
    out = random_affine(images, params, torch.Generator().manual_seed(0), 16)
    assert torch.allclose(out, images, atol=1e-3)
    constant = make_params(augment__rotation=30, augment__fill_mode="constant").augment
    assert random_affine(images, constant, torch.Generator().manual_seed(0), 16).min() < 100


def test_the_batch_comes_out_at_the_models_size(make_params) -> None:
    """Shrunk and transformed: a constant picture stays constant."""
    params = make_params(augment__fill_mode="nearest").augment
    images = torch.full((4, 3, 32, 32), 90.0)
    out = random_affine(images, params, torch.Generator().manual_seed(0), 20)
    assert out.shape == (4, 3, 20, 20)
    assert torch.allclose(out, torch.full_like(out, 90.0), atol=1e-3)


def test_a_larger_batch_is_shrunk_as_evaluation_shrinks_it(make_params) -> None:
    """Training and evaluation see the same pixels: 150 px sampled straight down to 96 px by
    the affine transform would alias where evaluation's resize antialiases."""
    params = make_params(
        augment__rotation=0, augment__zoom=0, augment__width_shift=0, augment__height_shift=0,
        augment__shear=0, augment__horizontal_flip=True,
    ).augment  # fmt: skip
    images = batch(16, size=150)
    evaluated = resize_square(images, 96)
    out = random_affine(images, params, torch.Generator().manual_seed(1), 96)
    for augmented, expected in zip(out, evaluated, strict=True):
        assert torch.allclose(augmented, expected, atol=1e-3) or torch.allclose(
            augmented, expected.flip(2), atol=1e-3
        )
