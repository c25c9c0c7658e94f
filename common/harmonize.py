"""Running a trained harmonizer over a whole volume, slice by slice.

The input is scaled so that its foreground 99th percentile is 1.0, the scale at
which the network was trained (profile units times a random gain). Each axial
slice goes through the U-Net; the result is in reference-profile units.
"""

import numpy as np
import torch
from tqdm.auto import tqdm

from common.errors import InputError

INPUT_SCALE_PERCENTILE = 99.0


def normalize_input(volume: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Divide by the foreground's 99th percentile, the network's expected input scale."""
    foreground = volume[mask]
    if foreground.size == 0:
        raise InputError("the foreground mask is empty")
    scale = float(np.percentile(foreground, INPUT_SCALE_PERCENTILE))
    if scale <= 0:
        raise InputError("the foreground has no positive signal; is this a magnitude image?")
    return (volume / scale).astype(np.float32)


@torch.inference_mode()
def harmonize_volume(
    model: torch.nn.Module,
    volume: np.ndarray,
    mask: np.ndarray,
    *,
    device: torch.device,
    batch_size: int = 8,
    progress: bool = False,
) -> np.ndarray:
    """Harmonize a canonical (X, Y, Z) volume; returns float32 (X, Y, Z) in profile units."""
    model.to(device).eval()
    normalized = torch.from_numpy(normalize_input(volume, mask)).permute(2, 0, 1)  # (Z, X, Y)
    output = torch.empty_like(normalized)
    starts = range(0, normalized.shape[0], batch_size)
    for start in tqdm(starts, desc="slices", unit="batch", disable=not progress, leave=False):
        batch = normalized[start : start + batch_size].to(device)
        output[start : start + batch_size] = model(batch[:, None])[:, 0].clamp_min(0).cpu()
    return output.permute(1, 2, 0).numpy().copy()
