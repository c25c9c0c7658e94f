import numpy as np
import pytest
from pydantic import ValidationError

from simulations.phantoms.scanner import (
    FWHM_PER_SIGMA,
    AppliedEffects,
    ScannerEffects,
    add_rician_noise,
    apply_effects,
    bias_field,
    kspace_filter,
    sample_effects,
)

SHAPE = (32, 36, 28)
SPACING = (2.0, 2.0, 2.0)


def ball(shape: tuple[int, int, int] = SHAPE, radius: float = 0.6) -> np.ndarray:
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    return (sum(g**2 for g in grid) < radius**2).astype(np.float32)


def no_effects(**changes: object) -> AppliedEffects:
    values = {
        "bias_strength": 0.0,
        "bias_scale_mm": 100.0,
        "bias_seed": 1,
        "blur_fwhm_mm": (0.0, 0.0, 0.0),
        "kspace_fraction": (1.0, 1.0, 1.0),
        "snr": None,
        "noise_seed": 2,
        "gain": 1.0,
        "offset": 0.0,
    }
    return AppliedEffects(**{**values, **changes})


def test_bias_field_has_configured_strength_and_unit_mean_in_brain() -> None:
    brain = ball() > 0

    field = bias_field(SHAPE, SPACING, strength=0.2, scale_mm=60.0, seed=4, brain=brain)

    assert float(field[brain].mean()) == pytest.approx(1.0, rel=1e-4)
    assert float(np.log(field).std()) == pytest.approx(0.2, rel=1e-3)
    neighbour_change = np.abs(np.diff(np.log(field), axis=0)).max()
    assert neighbour_change < 0.2 * 0.5  # smooth: far below the field's own spread
    np.testing.assert_array_equal(bias_field(SHAPE, SPACING, 0.0, 60.0, 4, brain), 1.0)


def point_spread(fwhm: tuple[float, float, float], spacing: tuple[float, float, float]):
    shape = (41, 41, 41)
    impulse = np.zeros(shape, dtype=np.float32)
    impulse[20, 20, 20] = 1.0
    psf = kspace_filter(impulse, spacing, fwhm, (1.0, 1.0, 1.0))
    positions = (np.arange(41) - 20).astype(np.float64)
    measured = []
    for axis in range(3):
        profile = psf.sum(axis=tuple(a for a in range(3) if a != axis))
        variance = (profile * positions**2).sum() / profile.sum()
        measured.append(FWHM_PER_SIGMA * np.sqrt(variance) * spacing[axis])
    return measured


def test_blur_matches_the_configured_anisotropic_fwhm() -> None:
    measured = point_spread((3.0, 3.0, 8.0), (1.0, 1.0, 1.0))

    np.testing.assert_allclose(measured, [3.0, 3.0, 8.0], rtol=0.05)


def test_kspace_truncation_rings_at_edges() -> None:
    step = np.zeros((64, 8, 8), dtype=np.float32)
    step[16:48] = 1.0

    full = kspace_filter(step, SPACING, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    truncated = kspace_filter(step, SPACING, (0.0, 0.0, 0.0), (0.5, 1.0, 1.0))

    np.testing.assert_allclose(full, step, atol=1e-5)
    overshoot = float(truncated.max()) - 1.0
    assert 0.05 < overshoot < 0.15  # the Gibbs overshoot is about 9 %
    assert float(truncated.min()) < -0.03


def test_rician_noise_has_the_requested_sigma() -> None:
    volume = np.zeros((64, 64, 32), dtype=np.float32)
    volume[:, :32] = 10.0

    noisy = add_rician_noise(volume, sigma=0.5, seed=0)

    background = noisy[:, 32:]
    assert float(np.sqrt(np.mean(background**2) / 2)) == pytest.approx(0.5, rel=0.03)
    assert float(background.min()) >= 0.0
    assert float(noisy[:, :32].mean()) == pytest.approx(10.0, rel=0.01)
    assert float(noisy[:, :32].std()) == pytest.approx(0.5, rel=0.05)


def test_sampling_follows_the_documented_ranges_and_is_seeded() -> None:
    config = ScannerEffects(snr=20, bias_strength=0.2, bias_scale_mm=100, gain=500)

    draws = [sample_effects(config, np.random.default_rng(s)) for s in range(50)]

    assert sample_effects(config, np.random.default_rng(0)) == draws[0]
    strengths = np.array([d.bias_strength for d in draws])
    assert strengths.min() >= 0.1 and strengths.max() <= 0.3
    assert len({d.bias_seed for d in draws}) == 50
    assert all(d.snr == 20 and d.blur_fwhm_mm == config.blur_fwhm_mm for d in draws)
    gains = np.array([d.gain for d in draws])
    assert gains.std() > 0 and abs(np.log(gains / 500)).max() < 0.25


def test_apply_effects_replays_exactly_from_its_parameters() -> None:
    config = ScannerEffects(snr=20, bias_strength=0.2, blur_fwhm_mm=(2, 2, 5), offset=5)
    signal = ball()
    applied = sample_effects(config, np.random.default_rng(9))

    first = apply_effects(signal, applied, SPACING, signal > 0, reference_signal=1.0)
    replayed = apply_effects(
        signal, AppliedEffects(**applied.model_dump()), SPACING, signal > 0, 1.0
    )

    np.testing.assert_array_equal(first, replayed)


def test_gain_and_offset_scale_a_clean_image() -> None:
    signal = ball()

    image = apply_effects(signal, no_effects(gain=250.0, offset=7.0), SPACING, signal > 0, 1.0)

    np.testing.assert_allclose(image, signal * 250.0 + 7.0, rtol=1e-5, atol=1e-3)


def test_bad_effects_values_are_refused_at_construction() -> None:
    with pytest.raises(ValidationError, match="snr"):
        ScannerEffects(snr=0)
    with pytest.raises(ValidationError, match="kspace_fraction"):
        ScannerEffects(kspace_fraction=(1.0, 1.0, 0.1))
    with pytest.raises(ValidationError, match="bias_strenght"):
        ScannerEffects(bias_strenght=0.1)
