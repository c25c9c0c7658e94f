"""Classical baselines on synthetic three-tissue heads with known tissue levels."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from common.configs.profile import ProfileConfig
from common.errors import InputError
from common.profile import ReferenceProfile, fit_profile, foreground_landmarks
from simulations.baselines import BASELINES, n4_nyul, nyul, white_stripe, zscore
from tests.conftest import synthetic_head

SHAPE = (40, 48, 40)
SPACING = (1.0, 1.0, 1.0)
WM, GM, CSF = 1.0, 0.6, 0.3


def gaussian_head(seed: int, tissue_noise: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """A T1w-like head with Gaussian tissue noise and a WM core of about a third of the head.

    Returns the volume and its WM-core mask (shrunk by a margin against edge voxels).
    """
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij"))
    radius = np.sqrt(((grid / np.array([0.8, 0.85, 0.8])[:, None, None, None]) ** 2).sum(0))
    volume = np.where(radius < 1.0, CSF, 0.0)
    volume = np.where(radius < 0.9, GM, volume)
    volume = np.where(radius < 0.7, WM, volume)
    volume = volume + tissue_noise * rng.standard_normal(SHAPE) * (radius < 1.0)
    return volume.astype(np.float32), radius < 0.5


def head_mask(volume: np.ndarray) -> np.ndarray:
    return volume > 0.15


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    """Fitted on three reference cases of the reference site, never on the scan under test."""
    cases = [gaussian_head(seed)[0] for seed in (11, 12, 13)]
    return fit_profile([(v, head_mask(v)) for v in cases], ProfileConfig(), "T1w")


def smooth_bias(strength: float = 0.4) -> np.ndarray:
    """A smooth multiplicative field, like receive-coil sensitivity along X and Y."""
    x = np.linspace(-1, 1, SHAPE[0])[:, None, None]
    y = np.linspace(-1, 1, SHAPE[1])[None, :, None]
    return np.exp(strength * x + 0.5 * strength * y).astype(np.float32) * np.ones(SHAPE, np.float32)


def cv(values: np.ndarray) -> float:
    return float(values.std() / values.mean())


def shading_cv(volume: np.ndarray, region: np.ndarray) -> float:
    """CV of the low-passed volume in ``region``: smooth shading, with the voxel noise removed."""
    return cv(gaussian_filter(volume, sigma=2.0)[region])


def test_zscore_gives_unit_statistics_invariant_to_gain_and_offset() -> None:
    volume, _ = gaussian_head(seed=0)
    mask = head_mask(volume)

    plain = zscore(volume, mask)
    shifted = zscore(volume * 730.0 + 50.0, mask)

    assert plain.dtype == np.float32
    assert abs(plain[mask].mean()) < 1e-5
    assert abs(plain[mask].std() - 1.0) < 1e-5
    np.testing.assert_allclose(shifted, plain, atol=1e-4)


def test_white_stripe_maps_white_matter_to_zero_whatever_the_gain() -> None:
    volume, wm = gaussian_head(seed=1)
    mask = head_mask(volume)

    plain = white_stripe(volume, mask)
    scaled = white_stripe(volume * 730.0, mask)

    assert abs(float(plain[wm].mean())) < 0.3  # WM sits in the stripe
    gm = mask & (np.abs(volume - GM) < 0.02)
    assert float(plain[gm].mean()) < -3.0  # GM lies many stripe-stds below WM
    np.testing.assert_allclose(scaled, plain, atol=1e-3)


def test_white_stripe_picks_the_brightest_mode_not_the_largest() -> None:
    volume, wm = gaussian_head(seed=2)
    mask = head_mask(volume)
    # Enlarge the GM shell's share: GM becomes the tallest histogram mode.
    volume = np.where(mask & ~wm & (volume > 0.8), GM + (volume - WM), volume).astype(np.float32)

    out = white_stripe(volume, mask)

    assert abs(float(out[wm].mean())) < 0.3


def test_nyul_maps_the_landmarks_onto_the_profile(profile: ReferenceProfile) -> None:
    clean = synthetic_head(SHAPE, seed=7)  # another phantom family: landmarks still match
    mask = head_mask(clean)
    volume = clean * 730.0 + 20.0

    out = nyul(volume, mask, profile)

    landmarks = foreground_landmarks(out, mask, profile.percentiles)
    np.testing.assert_allclose(landmarks, profile.landmarks, atol=1e-4)


def test_n4_then_nyul_removes_shading_that_nyul_alone_keeps(profile: ReferenceProfile) -> None:
    clean, wm = gaussian_head(seed=3)
    mask = head_mask(clean)
    biased = clean * smooth_bias() * 500.0

    unbiased = shading_cv(nyul(clean, mask, profile), wm)
    nyul_only = shading_cv(nyul(biased, mask, profile), wm)
    corrected = shading_cv(n4_nyul(biased, mask, SPACING, profile), wm)

    assert nyul_only > 3.0 * unbiased  # a global map cannot undo a spatial field
    assert corrected < 0.4 * nyul_only
    assert corrected < 1.5 * unbiased


def test_smoothing_lowers_high_frequency_noise(profile: ReferenceProfile) -> None:
    volume, wm = gaussian_head(seed=4, tissue_noise=0.05)
    mask = head_mask(volume)

    sharp = n4_nyul(volume, mask, SPACING, profile)
    smooth = n4_nyul(volume, mask, SPACING, profile, smoothing_sigma_voxels=0.5)

    inner = wm[1:]
    assert np.diff(smooth, axis=0)[inner].std() < 0.8 * np.diff(sharp, axis=0)[inner].std()
    assert abs(float(smooth[wm].mean()) - float(sharp[wm].mean())) < 0.01


def test_baselines_are_the_five_named_methods_in_order(profile: ReferenceProfile) -> None:
    volume, _ = gaussian_head(seed=5)
    mask = head_mask(volume)

    outputs = {name: run(volume, mask, SPACING, profile) for name, run in BASELINES.items()}

    assert list(outputs) == [
        "z-score",
        "WhiteStripe",
        "Nyul",
        "N4 + Nyul",
        "N4 + Nyul + smoothing (0.5 vox)",
    ]
    for name, out in outputs.items():
        assert out.shape == volume.shape, name
        assert out.dtype == np.float32, name
        assert np.all(np.isfinite(out)), name


@pytest.mark.parametrize("name", list(BASELINES))
def test_every_baseline_refuses_an_empty_mask(name: str, profile: ReferenceProfile) -> None:
    volume, _ = gaussian_head(seed=6)

    with pytest.raises(InputError, match="mask is empty"):
        BASELINES[name](volume, np.zeros(SHAPE, dtype=bool), SPACING, profile)


def test_constant_foreground_and_bad_arguments_are_refused(profile: ReferenceProfile) -> None:
    volume = np.ones(SHAPE, dtype=np.float32)
    mask = np.ones(SHAPE, dtype=bool)

    with pytest.raises(InputError, match="constant"):
        zscore(volume, mask)
    with pytest.raises(InputError, match="same shape"):
        zscore(volume, mask[:-1])
    with pytest.raises(InputError, match="width"):
        white_stripe(volume, mask, width=0.0)
    with pytest.raises(InputError, match="smoothing_sigma_voxels"):
        n4_nyul(volume, mask, SPACING, profile, smoothing_sigma_voxels=-1.0)
