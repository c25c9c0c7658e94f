"""From a site's reference scans to training targets in the shared reference contrast.

Each case is loaded in canonical orientation, masked, optionally bias-corrected
(the site's own shading should not become the target), and mapped onto the
consortium profile. The same steps run at every site and in centralized training.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from common.bias_correction import apply_bias_correction
from common.configs.profile import ProfileConfig
from common.mask import foreground_mask
from common.nifti import load_volume, nifti_stem
from common.profile import ReferenceProfile, fit_profile
from common.profile_mapping import map_to_profile


@dataclass(frozen=True)
class ReferenceCase:
    """One reference scan after preparation: canonical float32 data and its mask."""

    name: str
    data: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, float, float]


def load_reference_cases(
    files: Sequence[Path], config: ProfileConfig, *, progress: bool = False, label: str = ""
) -> list[ReferenceCase]:
    """Load, mask and (as configured) bias-correct every reference case."""
    cases = []
    for path in tqdm(
        files, desc=f"loading {label}".strip(), unit="case", disable=None if progress else True
    ):
        volume = load_volume(path)
        mask = foreground_mask(volume.data)
        data = apply_bias_correction(volume.data, mask, volume.spacing, config.bias_correction)
        cases.append(ReferenceCase(nifti_stem(path), data, mask, volume.spacing))
    return cases


def site_profile(
    cases: Sequence[ReferenceCase], config: ProfileConfig, modality: str
) -> ReferenceProfile:
    """The site's own reference profile; refused below ``config.min_cases`` cases."""
    return fit_profile([(case.data, case.mask) for case in cases], config, modality)


def training_targets(
    cases: Sequence[ReferenceCase], profile: ReferenceProfile, config: ProfileConfig
) -> list[np.ndarray]:
    """Every case mapped onto ``profile`` (profile units, float32)."""
    return [map_to_profile(case.data, case.mask, profile, config) for case in cases]
