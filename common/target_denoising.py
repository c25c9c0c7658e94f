"""Edge-preserving denoising of pseudo-targets (issue 6; docs/training-targets.md, stop 16).

A pseudo-target is the global model's harmonization of a foreign scan. The
model sharpens away that scanner's blur and lifts its noise with it, so the
target is grainier than the scan it came from, and the site would teach that
grain back. Total variation (Chambolle's algorithm, from scikit-image) flattens
the grain and keeps the edges, where a Gaussian blur softens both.
"""

import numpy as np
import torch
from skimage.restoration import denoise_tv_chambolle


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
