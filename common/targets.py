"""From a site's reference scans to training targets in the shared reference contrast.

Each case is loaded in canonical orientation, masked, optionally bias-corrected
(the site's own shading should not become the target), and mapped onto the
consortium profile. The same steps run at every site and in centralized training.
"""

import hashlib
import logging
import os
import tempfile
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

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReferenceCase:
    """One reference scan after preparation: canonical float32 data and its mask."""

    name: str
    data: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, float, float]


def _cache_path(files: Sequence[Path], config: ProfileConfig, cache_dir: Path) -> Path:
    """A cache file named by the preparation settings and each file's path, size and mtime."""
    digest = hashlib.sha256(config.model_dump_json().encode())
    for path in files:
        stat = Path(path).stat()
        digest.update(f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return Path(cache_dir) / f"reference-cases-{digest.hexdigest()[:32]}.npz"


def _read_cache(path: Path) -> list[ReferenceCase] | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            names, spacings = stored["names"], stored["spacings"]
            return [
                ReferenceCase(str(name), stored[f"data{i}"], stored[f"mask{i}"], tuple(spacing))
                for i, (name, spacing) in enumerate(zip(names, spacings, strict=True))
            ]
    except (OSError, KeyError, ValueError):
        logger.warning("ignoring an unreadable cache file %s", path)
        return None


def _write_cache(path: Path, cases: Sequence[ReferenceCase]) -> None:
    arrays: dict[str, np.ndarray] = {
        "names": np.array([case.name for case in cases]),
        "spacings": np.array([case.spacing for case in cases], dtype=np.float64),
    }
    for i, case in enumerate(cases):
        arrays[f"data{i}"], arrays[f"mask{i}"] = case.data, case.mask
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(handle)
    try:
        np.savez(temp, **arrays)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def load_reference_cases(
    files: Sequence[Path],
    config: ProfileConfig,
    *,
    progress: bool = False,
    label: str = "",
    cache_dir: Path | None = None,
) -> list[ReferenceCase]:
    """Load, mask and (as configured) bias-correct every reference case.

    With ``cache_dir`` the prepared cases are kept on the site's disk, keyed by
    the settings and the files' paths, sizes and times: a SuperNode runs each
    message in a fresh process, and N4 on every case each round would cost
    more than the training.
    """
    cache = _cache_path(files, config, cache_dir) if cache_dir is not None else None
    if cache is not None and cache.exists():
        cached = _read_cache(cache)
        if cached is not None:
            return cached
    cases = []
    for path in tqdm(
        files, desc=f"loading {label}".strip(), unit="case", disable=None if progress else True
    ):
        volume = load_volume(path)
        mask = foreground_mask(volume.data)
        data = apply_bias_correction(volume.data, mask, volume.spacing, config.bias_correction)
        cases.append(ReferenceCase(nifti_stem(path), data, mask, volume.spacing))
    if cache is not None:
        _write_cache(cache, cases)
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


def held_out_count(num_cases: int, min_cases: int) -> int:
    """How many of a site's cases a federated run keeps back for its held-out loss.

    One, when the site has more than ``min_cases`` (so the profile, which needs
    ``min_cases``, never loses a case it depends on); otherwise none. The last
    case in file order is the one kept back. Comparison models use the same
    split so that they train on exactly the cases the federation trained on.
    """
    return 1 if num_cases > min_cases else 0


def split_held_out(
    cases: Sequence[ReferenceCase], min_cases: int
) -> tuple[Sequence[ReferenceCase], Sequence[ReferenceCase]]:
    """The cases a federated run trains on, and the ones it keeps back (same sequence type)."""
    training = len(cases) - held_out_count(len(cases), min_cases)
    return cases[:training], cases[training:]
