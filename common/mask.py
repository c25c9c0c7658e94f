"""Automatic foreground masks for skull-stripped and whole-head scans.

The mask decides where the loss is computed and where the intensity landmarks
are measured, so it must come out the same way at every site. It uses a lenient
Otsu threshold on a lightly smoothed volume, keeps the largest connected body,
and closes and fills it, so dark CSF inside the brain or head is included while
air and background noise are not.
"""

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from common.errors import InputError

SMOOTHING_SIGMA_VOXELS = 1.0
THRESHOLD_FRACTION_OF_OTSU = 0.5
MIN_FOREGROUND_FRACTION = 0.001


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    """Fill holes in 3D and in each axial slice: ventricles touch no border in 2D."""
    filled = ndimage.binary_fill_holes(mask)
    for k in range(filled.shape[2]):
        filled[:, :, k] = ndimage.binary_fill_holes(filled[:, :, k])
    return filled


def foreground_mask(volume: np.ndarray) -> np.ndarray:
    """Boolean mask of the head or brain in a 3D volume (any orientation).

    Raises :class:`InputError` when no plausible foreground is found, which
    happens for empty or pure-noise volumes.
    """
    smoothed = ndimage.gaussian_filter(volume.astype(np.float32), SMOOTHING_SIGMA_VOXELS)
    otsu = float(threshold_otsu(smoothed))
    mask = smoothed > otsu * THRESHOLD_FRACTION_OF_OTSU
    mask = _largest_component(mask)
    mask = ndimage.binary_closing(
        mask, structure=ndimage.generate_binary_structure(3, 1), iterations=2
    )
    mask = _fill_holes_per_slice(mask)
    if mask.mean() < MIN_FOREGROUND_FRACTION:
        raise InputError("no foreground found: the volume looks empty or is pure noise")
    return mask


def slice_foreground_fraction(mask: np.ndarray) -> np.ndarray:
    """Share of foreground voxels in each axial slice ``mask[:, :, k]``."""
    return mask.reshape(-1, mask.shape[2]).mean(axis=0)
