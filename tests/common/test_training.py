"""Training details that decide what each site teaches: detail flags and the coarse loss."""

import numpy as np
import torch

from common.configs.training import TrainingConfig
from common.training import (
    batch_loss,
    collect_slices,
    gaussian_lowpass,
    harmonization_loss,
    split_loss,
)
from tests.conftest import synthetic_head


def smooth_batch(rows: int = 4, size: int = 48) -> torch.Tensor:
    """Smooth images (a blurred disc): what a clean target looks like at low frequency."""
    axis = torch.linspace(-1, 1, size)
    disc = ((axis[:, None] ** 2 + axis[None, :] ** 2) < 0.5).float()
    return gaussian_lowpass(disc.expand(rows, size, size).clone(), 2.0)


def test_lowpass_keeps_constants_and_suppresses_pixel_noise():
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(2, 64, 64, generator=generator)

    assert torch.allclose(gaussian_lowpass(torch.full((1, 16, 16), 0.7), 1.0), torch.tensor(0.7))
    assert gaussian_lowpass(noise, 1.0).std() < 0.35 * noise.std()


def test_coarse_rows_are_not_taught_their_noise_but_detail_rows_are():
    target = smooth_batch()
    generator = torch.Generator().manual_seed(1)
    noisy_target = target + 0.1 * torch.randn(target.shape, generator=generator)
    mask = torch.ones_like(target, dtype=torch.bool)
    clean_prediction = target.clone()  # what the network should output

    coarse = split_loss(
        clean_prediction, noisy_target, mask, torch.zeros(4, dtype=torch.bool), 0.5, 1.0
    )
    full = split_loss(
        clean_prediction, noisy_target, mask, torch.ones(4, dtype=torch.bool), 0.5, 1.0
    )

    assert full > 4 * coarse  # the noisy site's texture is only punished where detail is taught
    assert torch.isclose(full, harmonization_loss(clean_prediction, noisy_target, mask, 0.5))


def test_coarse_rows_still_teach_contrast():
    target = smooth_batch()
    mask = torch.ones_like(target, dtype=torch.bool)
    wrong_contrast = 0.7 * target

    coarse = split_loss(wrong_contrast, target, mask, torch.zeros(4, dtype=torch.bool), 0.5, 1.0)

    assert coarse > 0.5 * harmonization_loss(wrong_contrast, target, mask, 0.5)


def test_mixed_batches_weight_rows_by_their_share():
    target = smooth_batch()
    mask = torch.ones_like(target, dtype=torch.bool)
    prediction = target + 0.05
    detail = torch.tensor([True, False, False, False])

    loss = split_loss(prediction, target, mask, detail, 0.0, 1.0)

    # a constant offset survives the blur, so both halves see the same 0.05 error
    assert torch.isclose(loss, torch.tensor(0.05), atol=1e-4)


def test_full_setting_ignores_the_flags():
    target = smooth_batch()
    generator = torch.Generator().manual_seed(2)
    prediction = target + 0.1 * torch.randn(target.shape, generator=generator)
    mask = torch.ones_like(target, dtype=torch.bool)
    flags = torch.tensor([True, False, True, False])

    full = batch_loss(prediction, target, mask, flags, TrainingConfig(non_reference_targets="full"))
    coarse = batch_loss(prediction, target, mask, flags, TrainingConfig())

    assert torch.isclose(full, harmonization_loss(prediction, target, mask, 0.5))
    assert coarse < full


def test_slices_carry_the_flag_of_their_volume():
    volumes = [synthetic_head(seed=0), synthetic_head(seed=1)]
    masks = [v > 0.1 for v in volumes]

    flagged = collect_slices(volumes, masks, 0.05, detail=[True, False])
    unflagged = collect_slices(volumes, masks, 0.05)

    first = len(collect_slices(volumes[:1], masks[:1], 0.05))
    assert flagged.detail is not None and unflagged.detail is None
    assert flagged.detail[:first].all() and not flagged.detail[first:].any()
    assert len(flagged) == len(unflagged)
    assert np.array_equal(flagged.targets.numpy(), unflagged.targets.numpy())
