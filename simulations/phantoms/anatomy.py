"""Tissue-fraction maps of a head: MNI152 anatomy, an optional scalp, per-subject warps.

The MNI152 GM and WM probability maps and brain mask ship inside nilearn and load
offline. CSF is what the brain mask holds beyond GM and WM. Each phantom subject
is the template under a smooth random elastic deformation, so subjects differ in
shape while keeping realistic anatomy.
"""

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from simulations.phantoms.fields import smooth_random_field
from simulations.phantoms.tissues import Tissue

Resolution = Literal[1, 2]
MASK_TISSUES: tuple[Tissue, ...] = ("gm", "wm", "csf")
SCALP_INNER_MM = 4.0  # skull bone, which gives no MR signal, fills the gap to the brain
SCALP_OUTER_MM = 9.0
DEFORMATION_CORRELATION_MM = 32.0
DEFORMATION_RMS_MM = (1.0, 2.5)


@dataclass(frozen=True)
class Anatomy:
    """Tissue fractions (float32, shape (X, Y, Z), RAS+) on a grid given by ``affine``.

    ``brain`` is the brain-mask fraction; ``fractions`` holds gm, wm, csf and fat,
    whose sum never exceeds 1 (the rest is air or bone).
    """

    fractions: dict[Tissue, np.ndarray]
    brain: np.ndarray
    affine: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.brain.shape)  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    def masks(self) -> dict[str, np.ndarray]:
        """Binary brain, gm, wm and csf masks; each brain voxel goes to its largest tissue."""
        brain = self.brain > 0.5
        stacked = np.stack([self.fractions[t] for t in MASK_TISSUES])
        label = np.argmax(stacked, axis=0)
        masks = {"brain": brain}
        for index, tissue in enumerate(MASK_TISSUES):
            masks[tissue] = brain & (label == index)
        return masks


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@functools.lru_cache(maxsize=4)
def load_template(resolution_mm: Resolution, scalp: bool = False) -> Anatomy:
    """The MNI152 anatomy at 1 or 2 mm, built once per process (arrays are read-only).

    With ``scalp``, a fat layer 4-9 mm outside the brain imitates a head that was
    not skull-stripped; the gap stands for bone, which gives no signal.
    """
    if resolution_mm not in (1, 2):
        raise ValueError(f"resolution_mm must be 1 or 2, not {resolution_mm!r}")
    if not scalp:
        return _load_mni152(resolution_mm)
    plain = load_template(resolution_mm, scalp=False)
    fractions = dict(plain.fractions)
    fractions["fat"] = _read_only(_scalp_layer(plain.brain > 0.5, float(resolution_mm)))
    return Anatomy(fractions=fractions, brain=plain.brain, affine=plain.affine)


def _load_mni152(resolution_mm: Resolution) -> Anatomy:
    from nilearn import datasets  # slow to import; only needed here

    gm_image = datasets.load_mni152_gm_template(resolution=resolution_mm)
    wm_image = datasets.load_mni152_wm_template(resolution=resolution_mm)
    mask_image = datasets.load_mni152_brain_mask(resolution=resolution_mm)
    brain = (np.asarray(mask_image.get_fdata()) > 0.5).astype(np.float32)
    gm = np.clip(np.asarray(gm_image.get_fdata(), dtype=np.float32), 0, 1) * brain
    wm = np.clip(np.asarray(wm_image.get_fdata(), dtype=np.float32), 0, 1) * brain
    over = np.maximum(gm + wm, 1.0)
    gm, wm = gm / over, wm / over
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    fractions: dict[Tissue, np.ndarray] = {
        "gm": _read_only(gm),
        "wm": _read_only(wm),
        "csf": _read_only(csf),
        "fat": _read_only(np.zeros_like(brain)),
    }
    affine = np.asarray(gm_image.affine, dtype=np.float64)
    return Anatomy(fractions=fractions, brain=_read_only(brain), affine=_read_only(affine))


def _scalp_layer(brain: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Fat fraction of a shell SCALP_INNER_MM..SCALP_OUTER_MM outside ``brain``, soft-edged."""
    distance = ndimage.distance_transform_edt(~brain, sampling=spacing_mm)
    inside_shell = np.minimum(distance - SCALP_INNER_MM, SCALP_OUTER_MM - distance)
    return np.clip(inside_shell / spacing_mm + 0.5, 0.0, 1.0).astype(np.float32)


def sample_displacement(anatomy: Anatomy, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A smooth random displacement field (3, X, Y, Z) in mm, and its RMS.

    Each component is a smooth field with structures about 32 mm across; the RMS
    displacement is drawn from U(1.0, 2.5) mm, so the largest shifts are a few mm
    and the warp stays invertible.
    """
    rms_mm = float(rng.uniform(*DEFORMATION_RMS_MM))
    components = [
        smooth_random_field(anatomy.shape, anatomy.spacing_mm, DEFORMATION_CORRELATION_MM, rng)
        for _ in range(3)
    ]
    return np.stack(components) * np.float32(rms_mm / np.sqrt(3.0)), rms_mm


def warp(anatomy: Anatomy, displacement_mm: np.ndarray) -> Anatomy:
    """Resample every map at x + displacement(x) (trilinear, zero outside the grid)."""
    spacing = np.asarray(anatomy.spacing_mm, dtype=np.float32)[:, None, None, None]
    coords = np.indices(anatomy.shape, dtype=np.float32) + displacement_mm / spacing

    def resample(volume: np.ndarray) -> np.ndarray:
        if not volume.any():
            return np.zeros_like(volume)
        out = ndimage.map_coordinates(volume, coords, order=1, mode="constant", cval=0.0)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    brain = resample(anatomy.brain)
    gm = resample(anatomy.fractions["gm"])
    wm = resample(anatomy.fractions["wm"])
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    fat = resample(anatomy.fractions["fat"])
    return Anatomy(
        fractions={"gm": gm, "wm": wm, "csf": csf, "fat": fat},
        brain=brain,
        affine=anatomy.affine.copy(),
    )
