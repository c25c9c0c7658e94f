"""Edge-preserving denoising of pseudo-targets (issue 6; docs/training-targets.md, stop 16).

A pseudo-target is the global model's harmonization of a foreign scan. The
model sharpens away that scanner's blur and lifts its noise with it, so the
target is grainier than the scan it came from, and the site would teach that
grain back. Total variation (Chambolle's algorithm, from scikit-image) flattens
the grain and keeps the edges, where a Gaussian blur softens both.

How strongly to denoise depends on how much of the training data is foreign
(stop 19): where reference sites hold a third of the training cases, denoising
helps; where they hold a sixth, the foreign cases' detail is worth more than
their grain costs, and denoising them loses edge fidelity.
"""

from fractions import Fraction

import numpy as np
import torch
from skimage.restoration import denoise_tv_chambolle

from common.configs.training import TrainingConfig


def total_variation_denoised(
    targets: torch.Tensor, masks: torch.Tensor, weight: float
) -> torch.Tensor:
    """Each (H, W) slice of ``targets`` denoised in-plane; values outside ``masks`` kept.

    ``weight`` is in profile units (the reference profile's 99th percentile is
    1); 0 returns ``targets`` itself. Slices are denoised independently, so a
    batch of any size gives each slice the same result.
    """
    if weight < 0:
        raise ValueError(f"the denoising weight must be 0 or more, got {weight}")
    if weight == 0 or targets.shape[0] == 0:
        return targets
    denoised = denoise_tv_chambolle(targets.numpy(), weight=weight, channel_axis=0)
    return torch.where(masks, torch.from_numpy(denoised.astype(np.float32)), targets)


# Reference sites' share of the training cases at which the measured optimum was
# full denoising (default phantoms, 3 of 9) and none (2 of 12); docs/training-targets.md.
FULL_DENOISE_SHARE = Fraction(1, 3)
NO_DENOISE_SHARE = Fraction(1, 6)


def share_scaled_weight(weight: float, reference_cases: int, all_cases: int) -> float:
    """``weight`` scaled by the reference sites' share of the training cases.

    Full at a share of a third or more, zero at a sixth or less, linear between:
    the two ends are the measured situations, the line between them is a guess.
    """
    if not 0 <= reference_cases <= all_cases or all_cases == 0:
        raise ValueError(
            f"reference cases must be between 0 and all cases (> 0); "
            f"got {reference_cases} of {all_cases}"
        )
    share = Fraction(reference_cases, all_cases)
    ramp = (share - NO_DENOISE_SHARE) / (FULL_DENOISE_SHARE - NO_DENOISE_SHARE)
    return weight * float(min(max(ramp, Fraction(0)), Fraction(1)))


def denoise_weight(training: TrainingConfig, reference_cases: int, all_cases: int) -> float:
    """The pseudo-target denoising weight to train with, given who holds the training cases."""
    if not training.pseudo_target_denoise_follows_share:
        return training.pseudo_target_denoise
    return share_scaled_weight(training.pseudo_target_denoise, reference_cases, all_cases)


def recorded_denoise_weight(
    training: TrainingConfig, reference_cases: int, all_cases: int
) -> float | None:
    """The weight a model records, or None where it made no pseudo-targets to denoise.

    None when the targets are not pseudo-targets, or when every training case is
    a reference case, so that a model's record says only what happened.
    """
    if training.non_reference_targets != "pseudo" or reference_cases >= all_cases:
        return None
    return denoise_weight(training, reference_cases, all_cases)
