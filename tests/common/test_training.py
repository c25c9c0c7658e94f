"""Training details that decide what each site teaches: detail flags and the coarse loss."""

import numpy as np
import pytest
import torch

from common.configs.training import TrainingConfig
from common.slices import collect_slices
from common.target_denoising import total_variation_denoised
from common.training import (
    batch_loss,
    gaussian_lowpass,
    harmonization_loss,
    pseudo_targets,
    resume_optimizer,
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


def test_resumed_optimizer_keeps_its_moments_and_the_configured_learning_rate():
    first = torch.nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(first.parameters(), lr=0.5)
    for _ in range(3):
        first(torch.ones(2, 3)).sum().backward()
        optimizer.step()
    saved = optimizer.state_dict()

    second = torch.optim.AdamW(torch.nn.Linear(3, 1).parameters(), lr=1e-3)
    training = TrainingConfig(learning_rate=2e-4, weight_decay=0.01)
    resume_optimizer(second, saved, training)

    assert float(second.state_dict()["state"][0]["step"]) == 3.0
    assert torch.equal(second.state_dict()["state"][0]["exp_avg"], saved["state"][0]["exp_avg"])
    assert [g["lr"] for g in second.param_groups] == [2e-4]
    assert [g["weight_decay"] for g in second.param_groups] == [0.01]


def test_training_from_a_kept_state_continues_adams_step_count():
    from common.configs.augmentation import AugmentationConfig
    from common.configs.model import UNetConfig
    from common.model import build_model
    from common.training import train_harmonizer

    volume = synthetic_head(shape=(32, 32, 6), seed=3).astype(np.float32)
    slices = collect_slices([volume / volume.max()], [volume > 0.05 * volume.max()], 0.05)
    training = TrainingConfig(epochs=1, batch_size=len(slices))
    model = build_model(UNetConfig(base_channels=8, depth=2), seed=0)
    options = {"percentiles": (1.0, 50.0, 99.0), "device": torch.device("cpu"), "progress": False}

    first = train_harmonizer(model, slices, training, AugmentationConfig(), **options)
    second = train_harmonizer(
        model,
        slices,
        training,
        AugmentationConfig(),
        optimizer_state=first.optimizer_state,
        **options,
    )

    assert float(first.optimizer_state["state"][0]["step"]) == 1.0
    assert float(second.optimizer_state["state"][0]["step"]) == 2.0


class Doubler(torch.nn.Module):
    """A stand-in 'model' whose output is known: twice the input, minus a constant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x - 0.5


def test_pseudo_targets_replace_only_non_reference_rows_with_the_models_output():
    targets = smooth_batch(rows=4)
    mask = targets > 0.1
    detail = torch.tensor([True, False, True, False])
    slices = collect_slices_from(targets, mask, detail)

    pseudo = pseudo_targets(Doubler(), slices, torch.device("cpu"), batch_size=1)

    assert torch.equal(pseudo.targets[detail], targets[detail])
    expected = ((2 * targets - 0.5).clamp_min(0) * mask)[~detail]
    assert torch.allclose(pseudo.targets[~detail], expected)
    assert pseudo.detail is None  # pseudo-targets teach detail too
    every_row_reference = collect_slices_from(targets, mask, torch.ones(4, dtype=torch.bool))
    assert pseudo_targets(Doubler(), every_row_reference, torch.device("cpu")) is (
        every_row_reference
    )


def test_a_second_pass_harmonizes_the_first_passes_output_inside_the_mask():
    targets = smooth_batch(rows=3)
    mask = targets > 0.1
    slices = collect_slices_from(targets, mask, torch.tensor([False, True, False]))

    twice = pseudo_targets(Doubler(), slices, torch.device("cpu"), batch_size=2, passes=2)

    once = (2 * targets - 0.5).clamp_min(0) * mask
    expected = (2 * once - 0.5).clamp_min(0) * mask
    rows = torch.tensor([0, 2])
    assert torch.allclose(twice.targets[rows], expected[rows])
    assert torch.equal(twice.targets[1], targets[1])
    with pytest.raises(ValueError, match="passes"):
        pseudo_targets(Doubler(), slices, torch.device("cpu"), passes=0)


def collect_slices_from(targets: torch.Tensor, mask: torch.Tensor, detail: torch.Tensor):
    from common.slices import SliceSet

    return SliceSet(targets=targets, masks=mask, detail=detail)


def test_pooled_pseudo_training_matches_coarse_in_epoch_one_then_departs():
    from common.configs.augmentation import AugmentationConfig
    from common.configs.model import UNetConfig
    from common.model import build_model
    from common.training import train_harmonizer

    volumes = [synthetic_head(shape=(32, 32, 6), seed=s).astype(np.float32) for s in (1, 2)]
    volumes = [v / v.max() for v in volumes]
    slices = collect_slices(volumes, [v > 0.05 for v in volumes], 0.05, detail=[True, False])
    options = {"percentiles": (1.0, 50.0, 99.0), "device": torch.device("cpu"), "progress": False}
    losses = {}
    for mode in ("coarse", "pseudo"):
        training = TrainingConfig(epochs=2, batch_size=8, non_reference_targets=mode)
        model = build_model(UNetConfig(base_channels=8, depth=2), seed=0)
        losses[mode] = train_harmonizer(
            model, slices, training, AugmentationConfig(), **options
        ).epoch_losses

    assert losses["pseudo"][0] == losses["coarse"][0]
    assert losses["pseudo"][1] != losses["coarse"][1]


def test_denoised_pseudo_targets_are_the_models_output_denoised_and_only_there():
    generator = torch.Generator().manual_seed(3)
    targets = smooth_batch(rows=4) + 0.05 * torch.randn(4, 48, 48, generator=generator)
    mask = targets > 0.1
    detail = torch.tensor([True, False, True, False])
    slices = collect_slices_from(targets, mask, detail)

    plain = pseudo_targets(Doubler(), slices, torch.device("cpu"), batch_size=2)
    denoised = pseudo_targets(Doubler(), slices, torch.device("cpu"), batch_size=2, denoise=0.04)

    assert torch.equal(denoised.targets[detail], targets[detail])  # reference rows untouched
    expected = total_variation_denoised(plain.targets[~detail], mask[~detail], 0.04)
    assert torch.allclose(denoised.targets[~detail], expected)
    assert not torch.allclose(denoised.targets[~detail], plain.targets[~detail])
