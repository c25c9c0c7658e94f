"""Reference profile: config, landmarks, spectra, fit/transform, merging and JSON."""

import json

import numpy as np
import pytest
from scipy import ndimage

from common.configs.profile import DEFAULT_PERCENTILES, ProfileConfig
from common.configs.validation import parse_config
from common.errors import ConfigError, HarmonizationError, InputError
from common.profile import (
    ReferenceProfile,
    fit_profile,
    foreground_landmarks,
    merge_profiles,
    radial_power_profile,
)
from common.profile_mapping import (
    ProfileNormalizer,
    apply_knots,
    landmark_knots,
    map_to_profile,
    sharpness_gain,
)

SHAPE = (40, 48, 40)


def make_case(
    seed: int, *, gain: float = 1.0, blur: float = 0.0, noise: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """Head-like phantom: CSF core, WM, GM shell with fine texture, near-zero background."""
    rng = np.random.default_rng(seed)
    axes = [np.linspace(-1.0, 1.0, n) for n in SHAPE]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    radius = np.sqrt((x / 0.95) ** 2 + (y / 0.9) ** 2 + (z / 0.85) ** 2)
    head = radius < 0.9
    volume = np.where(radius < 0.55, 100.0, 60.0) * head
    volume[radius < 0.2] = 25.0
    volume += head * 6.0 * ndimage.gaussian_filter(rng.normal(size=SHAPE), 0.7)
    if blur > 0.0:
        volume = ndimage.gaussian_filter(volume, (blur, blur, 0.0))
    volume = np.abs(volume + noise * rng.normal(size=SHAPE))
    return (gain * volume).astype(np.float32), head


def reference_cases(n: int, **kwargs: float) -> list[tuple[np.ndarray, np.ndarray]]:
    return [make_case(seed, gain=50.0 * (seed + 1), **kwargs) for seed in range(n)]


def toy_profile(landmarks: tuple[float, ...], power: tuple[float, ...], n_cases: int, **kw):
    fields = {"modality": "T1w", "percentiles": (10.0, 50.0, 99.0), "n_cases": n_cases}
    fields.update(kw)
    return ReferenceProfile(landmarks=landmarks, radial_power=power, **fields)


def log_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(np.log(a) - np.log(b))))


@pytest.fixture(scope="module")
def fitted() -> ProfileNormalizer:
    return ProfileNormalizer(ProfileConfig(), "T1w").fit(reference_cases(3))


# --- config ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("percentiles", "fragment"),
    [
        ((1.0, 50.0, 50.0, 99.0), "strictly increasing"),
        ((0.0, 50.0, 99.0), "between 0 and 100"),
        ((1.0, 50.0, 98.0), "last percentile must be 99"),
    ],
)
def test_config_rejects_bad_percentiles_in_one_line(percentiles, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_config(ProfileConfig, {"percentiles": percentiles}, "site.toml [profile]")

    message = str(caught.value)
    assert fragment in message and "site.toml [profile]" in message and "\n" not in message


def test_config_defaults_and_forbidden_extra():
    config = ProfileConfig()

    assert config.percentiles == DEFAULT_PERCENTILES and config.min_cases == 3
    with pytest.raises(ConfigError, match="unknown field 'min_case'"):
        parse_config(ProfileConfig, {"min_case": 2}, "run config")


# --- helpers --------------------------------------------------------------


def test_foreground_landmarks_are_masked_percentiles_and_refuse_tiny_masks():
    volume, mask = make_case(0)

    landmarks = foreground_landmarks(volume, mask, (5.0, 50.0, 99.0))

    np.testing.assert_allclose(landmarks, np.percentile(volume[mask], (5.0, 50.0, 99.0)))
    tiny = np.zeros_like(mask)
    tiny[20, 20, 20:25] = True
    with pytest.raises(HarmonizationError, match="5 foreground voxels"):
        foreground_landmarks(volume, tiny, (50.0, 99.0))


def test_blurred_image_has_less_high_frequency_power():
    sharp, mask = make_case(1, noise=0.0)
    blurred, _ = make_case(1, noise=0.0, blur=1.5)

    power_sharp = radial_power_profile(sharp, mask, 32)
    power_blurred = radial_power_profile(blurred, mask, 32)

    assert power_sharp.shape == (32,) and np.isclose(power_sharp.sum(), 1.0)
    assert power_blurred[16:].sum() < 0.2 * power_sharp[16:].sum()


def test_radial_power_is_scale_free():
    volume, mask = make_case(2)

    np.testing.assert_allclose(
        radial_power_profile(volume, mask, 16), radial_power_profile(7.0 * volume, mask, 16)
    )


# --- fit ------------------------------------------------------------------


def test_fit_gives_scale_free_profile_in_profile_units(fitted):
    profile = fitted.profile

    assert profile.landmarks[-1] == 1.0 and profile.n_cases == 3
    assert len(profile.radial_power) == 32
    # The three cases differ only in gain (50, 100, 150) and texture: same landmarks.
    same_gain = fit_profile([make_case(s) for s in range(3)], ProfileConfig(), "T1w")
    np.testing.assert_allclose(profile.landmarks, same_gain.landmarks, rtol=1e-6)


def test_fit_refuses_fewer_than_min_cases():
    with pytest.raises(HarmonizationError) as caught:
        ProfileNormalizer(ProfileConfig(min_cases=3), "T1w").fit(reference_cases(2))

    message = str(caught.value)
    assert "at least 3 cases" in message and "2 given" in message and "\n" not in message


def test_transform_before_fit_raises_clear_error():
    volume, mask = make_case(0)

    with pytest.raises(HarmonizationError, match=r"call fit\(\)"):
        ProfileNormalizer(ProfileConfig(), "T1w").transform(volume, mask)


# --- transform ------------------------------------------------------------


def test_mapping_hits_profile_landmarks_and_is_monotone(fitted):
    volume, mask = make_case(7, gain=3.0, noise=3.0)

    mapped = fitted.transform(volume, mask)

    landmarks = foreground_landmarks(mapped, mask, fitted.profile.percentiles)
    np.testing.assert_allclose(landmarks, fitted.profile.landmarks, atol=1e-4)
    order = np.argsort(volume, axis=None, kind="stable")
    assert np.all(np.diff(mapped.ravel()[order]) >= 0.0)
    assert mapped.dtype == np.float32 and mapped.shape == volume.shape


def test_mapping_is_scale_free(fitted):
    volume, mask = make_case(8)

    mapped = fitted.transform(volume, mask)
    mapped_scaled = fitted.transform(123.0 * volume, mask)

    np.testing.assert_allclose(mapped_scaled, mapped, rtol=1e-5, atol=1e-6)


def test_mapping_extrapolates_and_anchors_zero(fitted):
    volume, mask = make_case(9)
    volume[0, 0, 0] = 0.0
    volume[1, 0, 0] = 5.0 * volume[mask].max()

    mapped = fitted.transform(volume, mask)

    assert mapped[0, 0, 0] == 0.0
    assert mapped[1, 0, 0] > mapped[mask].max() and np.isfinite(mapped[1, 0, 0])


def test_flat_volume_with_duplicate_landmarks_maps_monotonically(fitted):
    volume, mask = make_case(4)
    volume[mask] = np.round(volume[mask] / volume[mask].max()) * 80.0  # two levels only

    mapped = fitted.transform(volume, mask)

    order = np.argsort(volume, axis=None, kind="stable")
    assert np.all(np.isfinite(mapped)) and np.all(np.diff(mapped.ravel()[order]) >= 0.0)


@pytest.mark.parametrize("site_effect", [{"blur": 0.6}, {"noise": 10.0}])
def test_sharpness_matching_moves_spectrum_toward_profile(site_effect):
    config = ProfileConfig(match_sharpness=True)
    intensity_only = config.model_copy(update={"match_sharpness": False})
    profile = fit_profile(reference_cases(3), config, "T1w")
    volume, mask = make_case(11, **site_effect)

    plain = map_to_profile(volume, mask, profile, intensity_only)
    matched = map_to_profile(volume, mask, profile, config)

    target = np.asarray(profile.radial_power)
    before = log_distance(radial_power_profile(plain, mask, 32), target)
    after = log_distance(radial_power_profile(matched, mask, 32), target)
    assert after < 0.5 * before
    landmarks = foreground_landmarks(matched, mask, profile.percentiles)
    np.testing.assert_allclose(landmarks, profile.landmarks, atol=1e-4)


def test_landmark_knots_separate_duplicates_and_anchor_zero():
    source = np.array([2.0, 5.0, 5.0, 5.0, 10.0])
    target = np.array([0.1, 0.4, 0.5, 0.6, 1.0])

    xp, fp = landmark_knots(source, target)

    assert xp[0] == 0.0 and fp[0] == 0.0
    assert np.all(np.diff(xp) > 0.0) and np.all(np.diff(fp) >= 0.0)
    np.testing.assert_allclose(xp[1:], source, atol=1e-4)
    grid = np.linspace(-5.0, 30.0, 2001)
    assert np.all(np.diff(apply_knots(grid, xp, fp)) >= 0.0)


def test_sharpness_gain_boosts_missing_power_damps_excess_and_respects_bounds():
    profile_power = np.array([0.4, 0.3, 0.2, 0.1])
    blurry = np.array([0.55, 0.3, 0.14, 0.01])
    noisy = np.array([0.3, 0.25, 0.22, 0.23])

    boost = sharpness_gain(profile_power, blurry, (0.5, 2.0))
    damp = sharpness_gain(profile_power, noisy, (0.5, 2.0))

    assert boost[-1] == 2.0 and boost[-1] > boost[0]
    assert damp[-1] < 1.0 and np.all((damp >= 0.5) & (damp <= 2.0))


# --- merge ----------------------------------------------------------------


def test_merge_weights_by_case_count():
    site_a = toy_profile((0.1, 0.5, 1.0), (0.4, 0.3, 0.2, 0.1), n_cases=3)
    site_b = toy_profile((0.3, 0.7, 1.0), (0.8, 0.1, 0.1, 0.0), n_cases=1)

    merged = merge_profiles([site_a, site_b], min_cases=1)

    np.testing.assert_allclose(merged.landmarks, (0.15, 0.55, 1.0))
    np.testing.assert_allclose(merged.radial_power, (0.5, 0.25, 0.175, 0.075))
    assert merged.n_cases == 4 and merged.landmarks[-1] == 1.0


@pytest.mark.parametrize(
    ("other", "fragment"),
    [
        ({"n_cases": 2}, "computed from 2 cases; at least 3"),
        ({"modality": "T2w"}, "modality T2w"),
        ({"percentiles": (20.0, 50.0, 99.0)}, "percentiles"),
        ({"radial_power": (0.2,) * 5}, "radial bins 5"),
    ],
)
def test_merge_refuses_incompatible_profiles_in_one_line(other, fragment):
    base = {"landmarks": (0.1, 0.5, 1.0), "power": (0.25,) * 4, "n_cases": 3}
    if "radial_power" in other:
        base["power"] = other.pop("radial_power")
    odd = toy_profile(base["landmarks"], base["power"], **{"n_cases": 3, **other})
    good = toy_profile((0.1, 0.5, 1.0), (0.25,) * 4, n_cases=3)

    with pytest.raises(HarmonizationError) as caught:
        merge_profiles([good, odd], min_cases=3)

    assert fragment in str(caught.value) and "profile 1" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_merge_refuses_nothing_to_merge():
    with pytest.raises(HarmonizationError, match="no reference profiles"):
        merge_profiles([], min_cases=3)


# --- JSON -----------------------------------------------------------------


def test_json_round_trip_is_exact(fitted):
    profile = fitted.profile

    restored = ReferenceProfile.from_json(profile.to_json(), "consortium.json")

    assert restored == profile


def test_corrupted_json_names_source_in_one_line(fitted):
    text = fitted.profile.to_json()

    with pytest.raises(InputError) as caught:
        ReferenceProfile.from_json(text[: len(text) // 2], "site-b/profile.json")

    assert str(caught.value).startswith("site-b/profile.json: ") and "\n" not in str(caught.value)


def test_invalid_profile_json_names_source_and_field(fitted):
    data = fitted.profile.model_dump()
    data["landmarks"] = list(reversed(data["landmarks"]))
    text = json.dumps(data)

    with pytest.raises(ConfigError) as caught:
        ReferenceProfile.from_json(text, "ledger entry 4")

    message = str(caught.value)
    assert message.startswith("ledger entry 4: ") and "strictly increasing" in message
    assert "\n" not in message
