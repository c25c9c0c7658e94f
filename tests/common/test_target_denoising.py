"""Total-variation denoising of pseudo-targets: grain goes, edges and the background stay;
the weight follows the reference sites' share of the training cases."""

import pytest
import torch

from common.configs.training import TrainingConfig
from common.target_denoising import (
    denoise_weight,
    recorded_denoise_weight,
    share_scaled_weight,
    total_variation_denoised,
)
from common.training import gaussian_lowpass


def noisy_step(rows: int = 2, size: int = 48, noise: float = 0.05, seed: int = 0):
    """A bright square on a dimmer tissue plateau, with pixel noise, inside a mask."""
    generator = torch.Generator().manual_seed(seed)
    clean = torch.full((rows, size, size), 0.4)
    clean[:, 12:36, 12:36] = 0.9
    mask = torch.zeros(rows, size, size, dtype=torch.bool)
    mask[:, 4:44, 4:44] = True
    noisy = (clean + noise * torch.randn(rows, size, size, generator=generator)) * mask
    return clean * mask, noisy, mask


def flat_noise(image: torch.Tensor) -> float:
    """Spread inside the bright square, away from its edge."""
    return float(image[:, 16:32, 16:32].std())


def edge_step(image: torch.Tensor) -> float:
    """The jump across the square's left edge, one pixel either side."""
    return float((image[:, 16:32, 12] - image[:, 16:32, 11]).mean())


def test_the_grain_goes_and_the_edge_stays_where_a_blur_removes_less_grain_and_softens_it():
    clean, noisy, mask = noisy_step()

    denoised = total_variation_denoised(noisy, mask, 0.04)
    blurred = gaussian_lowpass(noisy, 1.0)

    assert flat_noise(denoised) < 0.4 * flat_noise(noisy)
    assert flat_noise(blurred) > flat_noise(denoised)  # the blur removes less grain...
    assert edge_step(denoised) > 0.85 * edge_step(clean)
    assert edge_step(blurred) < 0.75 * edge_step(clean)  # ...and softens the edge more


def test_outside_the_mask_nothing_changes_and_zero_weight_is_the_identity():
    _, noisy, mask = noisy_step()
    noisy[~mask] = 0.3  # a value that denoising would pull on

    denoised = total_variation_denoised(noisy, mask, 0.04)

    assert torch.equal(denoised[~mask], noisy[~mask])
    assert not torch.equal(denoised[mask], noisy[mask])
    assert total_variation_denoised(noisy, mask, 0.0) is noisy
    with pytest.raises(ValueError, match="weight"):
        total_variation_denoised(noisy, mask, -0.1)


def test_each_slice_is_denoised_on_its_own():
    _, noisy, mask = noisy_step(rows=3)

    together = total_variation_denoised(noisy, mask, 0.04)
    alone = total_variation_denoised(noisy[1:2], mask[1:2], 0.04)

    assert torch.allclose(together[1:2], alone, atol=1e-6)


@pytest.mark.parametrize(
    ("reference_cases", "all_cases", "expected"),
    [
        (3, 9, 0.04),  # the default phantoms: a third, full weight
        (5, 5, 0.04),  # only reference sites
        (2, 12, 0.0),  # the 2-reference-case phantoms: a sixth, off
        (1, 10, 0.0),
        (0, 4, 0.0),
        (1, 4, 0.02),  # a quarter: halfway along the line
    ],
)
def test_the_denoising_weight_follows_the_reference_share(reference_cases, all_cases, expected):
    assert share_scaled_weight(0.04, reference_cases, all_cases) == pytest.approx(expected)


def test_exactly_a_sixth_switches_denoising_off_not_to_a_rounding_crumb():
    assert share_scaled_weight(0.04, 2, 12) == 0.0
    assert share_scaled_weight(0.04, 4, 12) == 0.04


@pytest.mark.parametrize(("reference_cases", "all_cases"), [(3, 2), (-1, 4), (0, 0)])
def test_impossible_case_counts_are_refused(reference_cases, all_cases):
    with pytest.raises(ValueError, match="reference cases"):
        share_scaled_weight(0.04, reference_cases, all_cases)


def test_a_fixed_weight_ignores_the_share():
    fixed = TrainingConfig(pseudo_target_denoise=0.03, pseudo_target_denoise_follows_share=False)
    scaled = TrainingConfig(pseudo_target_denoise=0.03)

    assert denoise_weight(fixed, 2, 12) == 0.03
    assert denoise_weight(scaled, 2, 12) == 0.0
    assert denoise_weight(scaled, 3, 9) == 0.03


def test_a_model_records_a_weight_only_where_it_made_pseudo_targets():
    pseudo = TrainingConfig(pseudo_target_denoise=0.04)
    coarse = TrainingConfig(pseudo_target_denoise=0.04, non_reference_targets="coarse")
    full = TrainingConfig(pseudo_target_denoise=0.04, non_reference_targets="full")

    assert recorded_denoise_weight(pseudo, 3, 9) == 0.04
    assert recorded_denoise_weight(pseudo, 2, 12) == 0.0  # made, but not denoised
    assert recorded_denoise_weight(pseudo, 3, 3) is None  # the reference site alone
    assert recorded_denoise_weight(coarse, 3, 9) is None
    assert recorded_denoise_weight(full, 3, 9) is None
