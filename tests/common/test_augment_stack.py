"""Augmenting stacks of neighbouring slices: one scanner per stack, own noise per slice, blur."""

import math

import pytest
import torch

from common.augment import sample_alterations
from common.augment.noise import noise_starts, stack_offsets
from common.augment.stack import (
    FWHM_PER_SIGMA,
    StackAugmenter,
    apply_stack_alterations,
    blur_through_plane,
    sample_stack_alterations,
)
from common.configs.augmentation import AlterationSetting, AugmentationConfig

ON = AlterationSetting(strength=1.0, probability=1.0)
OFF = AlterationSetting(strength=0.0, probability=0.0)


def _smooth_slices(count: int, size: int = 24) -> torch.Tensor:
    """Identical smooth discs, one per slice: any difference after altering is per-slice."""
    axis = torch.linspace(-1, 1, size)
    disc = (1.0 - (axis[:, None] ** 2 + axis[None, :] ** 2)).clamp_min(0)
    return disc.expand(count, size, size).contiguous()


def test_the_slices_of_a_stack_share_every_parameter_but_the_noise():
    config = AugmentationConfig(
        identity_probability=0.0, **{name: ON for name in AugmentationConfig().settings()}
    )
    alterations = sample_stack_alterations(config, 4, 3, (24, 24), torch.Generator().manual_seed(2))
    params = alterations.params.to_dict()

    assert alterations.params.batch_size == 12
    for name, values in params.items():
        if name in {"version", "shape", "noise_offset"}:
            continue
        per_stack = torch.tensor(values).view(4, 3, -1)
        assert torch.equal(per_stack, per_stack[:, :1].expand_as(per_stack)), name
    assert len(set(params["noise_offset"])) == 12


def test_identical_slices_of_a_stack_come_out_different_only_through_their_noise():
    noisy = AugmentationConfig(identity_probability=0.0, noise=ON, bias_field=ON)
    quiet = noisy.model_copy(update={"noise": OFF})
    stacks = _smooth_slices(3)[None].expand(2, 3, 24, 24).contiguous()

    with_noise, _ = StackAugmenter(noisy, 3)(stacks, torch.Generator().manual_seed(5))
    without, _ = StackAugmenter(quiet, 3)(stacks, torch.Generator().manual_seed(5))

    assert not torch.equal(with_noise[:, 0], with_noise[:, 1])
    assert not torch.equal(with_noise[:, 1], with_noise[:, 2])
    assert torch.equal(without[:, 0], without[:, 1]) and torch.equal(without[:, 1], without[:, 2])


def test_noise_windows_within_a_stack_never_overlap_even_past_the_stream():
    sampled = torch.tensor([1_000_000 + 256 * 256 * b for b in range(32)])
    offsets = stack_offsets(sampled, 5, (256, 256))

    starts = noise_starts(offsets, 256, 256).view(32, 5)
    gaps = (starts[:, :, None] - starts[:, None, :]).abs()
    off_diagonal = ~torch.eye(5, dtype=torch.bool).expand(32, 5, 5)
    assert bool((gaps[off_diagonal] >= 256 * 256).all())
    assert len(set(starts.flatten().tolist())) == 160  # no two slices of the batch share noise
    assert int(starts.min()) < int(starts[0, 0])  # the batch did wrap around


def test_through_plane_blur_spreads_a_single_bright_slice_to_its_neighbours():
    stacks = torch.zeros(2, 9, 4, 4)
    stacks[:, 4] = 1.0  # one bright slice at the centre
    fwhm = torch.tensor([2.0, 0.0])

    blurred = blur_through_plane(stacks, fwhm, 3)

    assert blurred.shape == (2, 3, 4, 4)
    sigma = 2.0 / FWHM_PER_SIGMA
    ratio = blurred[0, 0, 0, 0] / blurred[0, 1, 0, 0]
    assert math.isclose(float(ratio), math.exp(-0.5 / sigma**2), rel_tol=1e-5)
    assert 0.0 < float(blurred[0, 0, 0, 0]) == float(blurred[0, 2, 0, 0]) < 0.5
    assert torch.equal(blurred[1], stacks[1, 3:6])  # FWHM 0: untouched


def test_a_single_slice_draws_no_blur_and_exactly_what_the_2d_pipeline_draws():
    stack_generator = torch.Generator().manual_seed(9)
    plain_generator = torch.Generator().manual_seed(9)

    alterations = sample_stack_alterations(AugmentationConfig(), 6, 1, (16, 16), stack_generator)
    plain = sample_alterations(AugmentationConfig(), 6, (16, 16), plain_generator)

    assert alterations.params.to_dict() == plain.to_dict()
    assert not bool(alterations.fwhm.any())
    assert torch.equal(stack_generator.get_state(), plain_generator.get_state())


def test_stacks_are_blurred_with_their_probability_but_never_identity_samples():
    blurry = AugmentationConfig(identity_probability=0.0, through_plane_blur=ON)
    untouched = blurry.model_copy(update={"identity_probability": 1.0})

    drawn = sample_stack_alterations(blurry, 64, 3, (8, 8), torch.Generator().manual_seed(1))
    none = sample_stack_alterations(untouched, 64, 3, (8, 8), torch.Generator().manual_seed(1))

    assert bool(((drawn.fwhm >= 1.0) & (drawn.fwhm <= 3.0)).all())
    assert not bool(none.fwhm.any())


def test_stack_alterations_replay_exactly():
    stacks = torch.rand(3, 7, 16, 16, generator=torch.Generator().manual_seed(0))
    config = AugmentationConfig(identity_probability=0.0, through_plane_blur=ON)

    altered, applied = StackAugmenter(config, 3)(stacks, torch.Generator().manual_seed(4))

    assert altered.shape == (3, 3, 16, 16)
    assert torch.equal(apply_stack_alterations(stacks, applied), altered)


def test_a_stack_narrower_than_the_channels_is_refused():
    with pytest.raises(ValueError, match="cannot centre 5 channels"):
        StackAugmenter(AugmentationConfig(), 5)(torch.zeros(1, 3, 8, 8), torch.Generator())


def test_the_through_plane_blur_is_not_an_in_plane_alteration_and_is_switched_off_with_all():
    config = AugmentationConfig.off()

    assert "through_plane_blur" not in config.settings()
    assert config.through_plane_blur.strength == 0.0
