"""Running a trained harmonizer over a whole volume, slice by slice.

The volume is first landmark-mapped onto the model's reference profile, or
only scaled when it was acquired with the reference protocol (see
:mod:`common.input_mapping`); each axial slice then goes through the U-Net,
with its neighbours from the mapped volume when the model takes more than one
(2.5D; edge-replicated at the volume's ends, as in training). The result is in
reference-profile units (foreground 99th percentile about 1).
"""

import numpy as np
import torch
from tqdm.auto import tqdm

from common.errors import InputError
from common.input_mapping import InputMapping, volume_input
from common.model import input_channels
from common.profile import ReferenceProfile
from common.slices import neighbour_table


@torch.inference_mode()
def harmonize_volume(
    model: torch.nn.Module,
    volume: np.ndarray,
    mask: np.ndarray,
    profile: ReferenceProfile,
    *,
    device: torch.device,
    batch_size: int = 8,
    progress: bool = False,
    input_mapping: InputMapping = "landmarks",
) -> np.ndarray:
    """Harmonize a canonical (X, Y, Z) volume; returns float32 (X, Y, Z) in profile units."""
    if not mask.any():
        raise InputError("the foreground mask is empty")
    model.to(device).eval()
    mapped = volume_input(volume, mask, profile, input_mapping)
    slices = torch.from_numpy(mapped).permute(2, 0, 1)  # (Z, X, Y)
    depth, radius = slices.shape[0], input_channels(model) // 2
    stacks = torch.from_numpy(neighbour_table(np.arange(depth), depth, radius))  # (Z, C)
    output = torch.empty_like(slices)
    starts = range(0, depth, batch_size)
    for start in tqdm(
        starts, desc="slices", unit="batch", disable=None if progress else True, leave=False
    ):
        batch = slices[stacks[start : start + batch_size]].to(device)
        output[start : start + batch_size] = model(batch)[:, 0].clamp_min(0).cpu()
    return output.permute(1, 2, 0).numpy().copy()
