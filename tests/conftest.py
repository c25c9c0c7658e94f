"""Shared fixtures: small synthetic heads, written as real NIfTI files through nibabel."""

import os
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from common.profile import ReferenceProfile

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def synthetic_head(
    shape: tuple[int, int, int] = (32, 40, 24), seed: int = 0, noise: float = 0.02
) -> np.ndarray:
    """An ellipsoid 'head' with a bright core (WM), a darker shell (GM) and a CSF rim."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    radius = np.sqrt(((grid / np.array([0.8, 0.85, 0.8])[:, None, None, None]) ** 2).sum(0))
    radius = radius * (1 + 0.03 * rng.standard_normal())
    volume = np.where(radius < 1.0, 0.3, 0.0)  # CSF
    volume = np.where(radius < 0.85, 0.6, volume)  # GM
    volume = np.where(radius < 0.55, 1.0, volume)  # WM
    volume = volume + noise * np.abs(rng.standard_normal(shape))
    return volume.astype(np.float32)


def tiny_profile(
    percentiles: tuple[float, ...] = (1.0, 50.0, 99.0),
    landmarks: tuple[float, ...] = (0.1, 0.6, 1.0),
    n_cases: int = 3,
) -> ReferenceProfile:
    """A small valid reference profile for tests that need one but not a fitted one."""
    return ReferenceProfile(
        modality="T1w",
        percentiles=percentiles,
        landmarks=landmarks,
        radial_power=(0.7, 0.2, 0.07, 0.03),
        n_cases=n_cases,
    )


@pytest.fixture
def head() -> np.ndarray:
    return synthetic_head()


@pytest.fixture
def write_nifti(tmp_path: Path) -> Callable[..., Path]:
    """Write an array as a NIfTI file with a given affine (default: 2 mm RAS)."""

    def write(
        name: str, data: np.ndarray, affine: np.ndarray | None = None, folder: Path | None = None
    ) -> Path:
        target = (folder or tmp_path) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        matrix = np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine
        nib.save(nib.Nifti1Image(data, matrix), str(target))
        return target

    return write


@pytest.fixture
def sites_root(tmp_path: Path, write_nifti: Callable[..., Path]) -> Path:
    """Two tiny sites with three reference cases each; site-b has a different gain."""
    root = tmp_path / "sites"
    for site_index, (site, gain) in enumerate((("site-a", 1.0), ("site-b", 730.0))):
        for case in range(3):
            volume = synthetic_head(seed=10 * site_index + case) * gain
            write_nifti(f"sub-{case:02d}_T1w.nii.gz", volume, folder=root / site / "reference")
    return root
