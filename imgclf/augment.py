"""Augmentation of whole batches on the device, by augment.policy:

- keras, the original notebook's random affine: the ranges mean what they meant in Keras'
  ImageDataGenerator (rotation and shear in degrees, zoom as a range around 1, 0.15 meaning
  0.85 to 1.15 per axis, shifts as a fraction of the side, `nearest` fill repeating the
  border pixels);
- trivialaugment, today's usual policy: a random resized crop, a mirror image, one
  TrivialAugment operation and random erasing, from Kornia (which draws one operation per
  batch and its strength per image).

The keras policy shrinks a larger batch to the model's input size first, as evaluation does
(antialiased), then transforms it at that size; sampling 150 px straight down to 96 px would
alias, so training would see sharper, noisier pixels than evaluation.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from imgclf.config import AugmentParams
from imgclf.models.classifier import resize_square

PADDING = {"nearest": "border", "constant": "zeros", "reflect": "reflection"}


def augment_batch(
    images: torch.Tensor, params: AugmentParams, generator: torch.Generator, size: int
) -> torch.Tensor:
    """A float batch (N, C, H, W) of 0-255 pixels augmented by augment.policy at `size` x
    `size` (a keras policy that changes nothing returns the batch as it came: the model
    resizes its input itself). The keras policy draws from `generator`, Kornia from torch's
    seeded global generator."""
    if params.policy == "keras":
        return random_affine(images, params, generator, size)
    return trivial_augment_policy(params, size)(images / 255) * 255


@functools.cache
def trivial_augment_policy(params: AugmentParams, size: int) -> torch.nn.Module:
    # Kornia computes with tensors when imported, which fixes torch's CPU code path: it is
    # imported here, after pin_cpu_arithmetic, never at module level.
    import kornia.augmentation as K
    from kornia.augmentation.auto import TrivialAugment

    # "resample" crops the whole batch in one warp; Kornia's default slices and resizes each
    # image on its own, host work that grows with the batch and that a GPU waits for.
    crop = K.RandomResizedCrop(
        (size, size), scale=(params.crop_scale, 1.0), cropping_mode="resample"
    )
    steps = [crop]
    if params.horizontal_flip:
        steps.append(K.RandomHorizontalFlip())
    steps.append(TrivialAugment())
    if params.erasing:
        steps.append(K.RandomErasing(p=params.erasing))
    return torch.nn.Sequential(*steps)


def is_identity(params: AugmentParams) -> bool:
    ranges = (params.rotation, params.zoom, params.width_shift, params.height_shift, params.shear)
    return not any(ranges) and not params.horizontal_flip


def random_affine(
    images: torch.Tensor, params: AugmentParams, generator: torch.Generator, size: int
) -> torch.Tensor:
    """Augment a float batch (N, C, H, W) at `size` x `size`: a larger batch is first shrunk
    as evaluation shrinks it. The random draws come from `generator`, which lives on the
    batch's device, so no step waits for the host."""
    if is_identity(params):
        return images
    if max(images.shape[-2:]) > size:
        images = resize_square(images, size)
    n, device = images.shape[0], images.device

    def uniform(limit: float) -> torch.Tensor:
        draw = torch.rand(n, generator=generator, dtype=torch.float64, device=device)
        return (draw * 2 - 1) * limit

    angle = uniform(math.radians(params.rotation))
    shear = uniform(math.radians(params.shear))
    zoom_x, zoom_y = 1 + uniform(params.zoom), 1 + uniform(params.zoom)
    shift_x, shift_y = 2 * uniform(params.width_shift), 2 * uniform(params.height_shift)
    flip = torch.ones(n, dtype=torch.float64, device=device)
    if params.horizontal_flip:
        heads = torch.rand(n, generator=generator, device=device) < 0.5
        flip = torch.where(heads, -1.0, 1.0).double()

    # Output-to-input map in normalised coordinates: rotation @ shear @ zoom (with the flip).
    cos, sin = cos_sin(angle)
    a = torch.stack([cos, -sin, sin, cos], dim=1).view(n, 2, 2)
    ones, zeros = torch.ones_like(shear), torch.zeros_like(shear)
    shear_cos, shear_sin = cos_sin(shear)
    s = torch.stack([ones, -shear_sin, zeros, shear_cos], dim=1).view(n, 2, 2)
    z = torch.diag_embed(torch.stack([zoom_x * flip, zoom_y], dim=1))
    theta = torch.cat([a @ s @ z, torch.stack([shift_x, shift_y], dim=1).unsqueeze(2)], dim=2)
    grid = F.affine_grid(
        theta.to(images.dtype), [n, images.shape[1], size, size], align_corners=False
    )
    return F.grid_sample(
        images, grid, mode="bilinear", padding_mode=PADDING[params.fill_mode], align_corners=False
    )


def cos_sin(angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The cosine and sine of each angle, from torch.polar (the C library's): on the CPU
    torch.cos and torch.sin would call MKL's vector math (imgclf/runtime.py says why not)."""
    unit = torch.polar(torch.ones_like(angle), angle)
    return unit.real, unit.imag
