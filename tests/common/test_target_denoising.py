"""Total-variation denoising of pseudo-targets: grain goes, edges and the background stay."""

import pytest
import torch

from common.target_denoising import total_variation_denoised
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
