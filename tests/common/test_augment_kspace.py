"""k-space alterations: the combined filter, ringing, partial Fourier, Rician noise, spikes."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from common.augment import kspace, noise
from common.augment.kspace import KspaceParams, kspace_filter, simulate_acquisition
from common.fft import fft2c, irfft2, rfft2


def _bars(batch: int = 1, height: int = 32, width: int = 32) -> torch.Tensor:
    """Vertical bars: sharp edges along the columns only."""
    images = torch.zeros(batch, height, width)
    images[:, :, width // 4 : width // 2] = 1.0
    images[:, :, 3 * width // 4 :] = 0.5
    return images


def _disk(batch: int = 1, size: int = 32) -> torch.Tensor:
    axis = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return (torch.hypot(y, x) < 0.6).float().expand(batch, size, size).clone()


def test_neutral_parameters_need_no_filter_and_change_nothing_but_rounding():
    images = _disk(2)
    params = KspaceParams.neutral(2)

    filt, ratio = kspace_filter(params, 32, 32, images.device)
    out = simulate_acquisition(images, params)

    assert filt is None and ratio is None
    torch.testing.assert_close(out, images)


def test_radial_filter_takes_the_band_gains_at_dc_and_beyond_nyquist():
    params = replace(
        KspaceParams.neutral(1),
        band_log_gains=torch.tensor([[0.3, -0.2, -0.5]]),
        centre_log_scale=torch.tensor([0.25]),
    )

    filt, _ = kspace_filter(params, 16, 16, torch.device("cpu"))

    assert filt.shape == (1, 16, 9)
    assert filt[0, 0, 0].item() == pytest.approx(math.exp(0.3) * math.exp(0.25), rel=1e-5)
    assert filt[0, 8, 8].item() == pytest.approx(math.exp(-0.5), rel=1e-5)  # corner, r = sqrt 2
    assert filt[0, 0, 4].item() == pytest.approx(math.exp(-0.2), rel=1e-5)  # r = 0.5: mid only


def test_centre_scaling_scales_the_mean_intensity():
    images = _disk(1, 40) * 0.8 + 0.1
    params = replace(KspaceParams.neutral(1), centre_log_scale=torch.tensor([math.log(1.3)]))

    out = simulate_acquisition(images, params)

    assert out.mean().item() == pytest.approx(1.3 * images.mean().item(), rel=1e-4)


def test_apodization_blurs_only_along_its_axis():
    images = _bars()
    along_rows = replace(KspaceParams.neutral(1), apodization_log_edge=torch.tensor([[-3.0, 0.0]]))
    along_cols = replace(KspaceParams.neutral(1), apodization_log_edge=torch.tensor([[0.0, -3.0]]))

    untouched = simulate_acquisition(images, along_rows)
    blurred = simulate_acquisition(images, along_cols)

    torch.testing.assert_close(untouched, images, atol=1e-5, rtol=0)
    edge = images.diff(dim=-1).abs().max()
    assert blurred.diff(dim=-1).abs().max() < 0.8 * edge


def test_truncation_rings_with_gibbs_overshoot_next_to_a_sharp_edge():
    images = _bars(height=16, width=64)
    params = replace(KspaceParams.neutral(1), truncation_keep=torch.tensor([[1.0, 0.5]]))

    out = simulate_acquisition(images, params)

    plateau = out[0, 8, 16:32]
    assert plateau.max() > 1.05  # Gibbs overshoot is about 9 % of the step
    assert (out[0, 8, :16] > 0.03).any()  # ripples spill into the dark band


@pytest.mark.parametrize(("height", "width"), [(16, 16), (15, 13)])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("side", [1, -1])
def test_partial_fourier_matches_zero_filled_complex_reconstruction(height, width, axis, side):
    images = _disk(1, 20)[:, 2 : 2 + height, 3 : 3 + width] + 0.2
    fraction = 0.625  # 5/8, exact in float32 and float64
    params = replace(
        KspaceParams.neutral(1),
        partial_fourier_fraction=torch.tensor([fraction]),
        partial_fourier_axis=torch.tensor([axis]),
        partial_fourier_side=torch.tensor([side]),
    )
    size = (height, width)[axis]
    lines = np.round(np.fft.fftfreq(size) * size)
    acquired = side * lines >= -np.round((fraction - 0.5) * size)
    mask = acquired[:, None] if axis == 0 else acquired[None, :]
    reference = np.abs(np.fft.ifft2(np.fft.fft2(images[0].double().numpy()) * mask))

    out = simulate_acquisition(images, params)

    np.testing.assert_allclose(out[0].numpy(), reference, atol=1e-5)
    assert not np.allclose(reference, images[0].numpy(), atol=1e-2)


def test_noise_in_the_background_is_rayleigh_with_the_configured_sigma():
    sigma, height, width = 0.05, 128, 96
    images = torch.zeros(2, height, width)
    offsets = noise.sample_noise(1.0, torch.ones(2, dtype=torch.bool), torch.Generator(), (128, 96))
    params = replace(
        KspaceParams.neutral(2), noise_sigma=torch.full((2,), sigma), noise_offset=offsets[1]
    )

    out = simulate_acquisition(images, params)

    assert out.mean().item() == pytest.approx(sigma * math.sqrt(math.pi / 2), rel=0.02)
    assert (out**2).mean().item() == pytest.approx(2 * sigma**2, rel=0.03)


def test_noise_on_a_bright_foreground_has_standard_deviation_sigma():
    sigma = 0.03
    images = torch.ones(1, 128, 128)
    params = replace(KspaceParams.neutral(1), noise_sigma=torch.tensor([sigma]))

    out = simulate_acquisition(images, params)

    assert out.std().item() == pytest.approx(sigma, rel=0.03)
    assert out.mean().item() == pytest.approx(1.0, abs=0.002)


def test_noise_depends_only_on_each_samples_offset():
    size = 24 * 20
    together = noise.noise_fields(torch.tensor([7, 7 + size]), 24, 20, torch.device("cpu"))
    swapped = noise.noise_fields(torch.tensor([7 + size, 7]), 24, 20, torch.device("cpu"))

    torch.testing.assert_close(swapped[:, 0], together[:, 1], rtol=0, atol=0)
    torch.testing.assert_close(swapped[:, 1], together[:, 0], rtol=0, atol=0)
    assert not torch.equal(together[:, 0], together[:, 1])
    assert together[1].std().item() == pytest.approx(1.0, rel=0.05)


def test_a_spike_alone_is_a_plane_wave_of_the_configured_amplitude():
    params = replace(
        KspaceParams.neutral(1),
        spike_position=torch.tensor([[[3, -5], [0, 0], [0, 0]]]),
        spike_amplitude=torch.tensor([[0.2, 0.0, 0.0]]),
        spike_phase=torch.tensor([[0.7, 0.0, 0.0]]),
    )

    out = simulate_acquisition(torch.zeros(1, 20, 24), params)

    torch.testing.assert_close(out, torch.full_like(out, 0.2), atol=1e-5, rtol=0)


def test_a_spike_on_a_flat_image_makes_stripes_at_its_k_space_position():
    height, width, level, amplitude = 20, 24, 1.0, 0.1
    params = replace(
        KspaceParams.neutral(1),
        spike_position=torch.tensor([[[3, -5], [0, 0], [0, 0]]]),
        spike_amplitude=torch.tensor([[amplitude, 0.0, 0.0]]),
    )

    out = simulate_acquisition(torch.full((1, height, width), level), params)

    # |c + A e^{i theta}|^2 = c^2 + A^2 + 2 c A cos(theta): peaks at +-(ky, kx)
    power = fft2c(out[0] ** 2).abs()
    power[height // 2, width // 2] = 0
    peak = divmod(int(power.argmax()), width)
    assert peak in {(height // 2 + 3, width // 2 - 5), (height // 2 - 3, width // 2 + 5)}
    assert out.max().item() == pytest.approx(level + amplitude, rel=1e-4)


def test_samplers_leave_samples_that_are_off_neutral():
    on = torch.tensor([True, False, True])
    generator = torch.Generator().manual_seed(3)

    gains = kspace.sample_radial_gain(1.0, on, generator)
    keep = kspace.sample_truncation(1.0, on, generator)
    fraction, _, _ = kspace.sample_partial_fourier(1.0, on, generator)
    sigma, _ = noise.sample_noise(1.0, on, generator, (16, 16))
    _, amplitude, _ = noise.sample_spikes(1.0, on, generator, (16, 16))

    assert (gains[1] == 0).all() and (gains[0] != 0).all()
    assert (keep[1] == 1).all() and (keep[0] >= 0.5).all()
    assert fraction[1] == 1 and 0.55 <= fraction[0] <= 0.9
    assert sigma[1] == 0 and 0.025 <= sigma[0] <= 0.1
    assert (amplitude[1] == 0).all() and (amplitude[0] > 0).sum() >= 1


def test_acquisition_without_noise_applies_exactly_the_inspected_filter():
    images = _disk(4, 24) + 0.1
    params = replace(
        KspaceParams.neutral(4),
        band_log_gains=torch.tensor([[0.3, -0.2, 0.1], [0.0] * 3, [-0.4, 0.2, 0.3], [0.0] * 3]),
        centre_log_scale=torch.tensor([0.2, 0.0, 0.0, -0.3]),
        apodization_log_edge=torch.tensor([[-2.0, 0.0], [0.0, -1.0], [-0.5, -2.5], [0.0, 0.0]]),
        truncation_keep=torch.tensor([[1.0, 0.6], [0.7, 1.0], [1.0, 1.0], [0.8, 0.9]]),
    )
    filt, _ = kspace_filter(params, 24, 24, images.device)
    expected = irfft2(rfft2(images) * filt, 24).abs()

    out = simulate_acquisition(images, params)

    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_rows_of_a_mixed_batch_match_the_same_rows_acquired_alone():
    images = torch.cat([_disk(3, 20), _bars(3, 20, 20)]) + 0.05
    params = replace(
        KspaceParams.neutral(6),
        band_log_gains=torch.tensor([[0.3, 0.0, -0.2]] + [[0.0] * 3] * 5),
        truncation_keep=torch.tensor([[1.0, 1.0]] * 4 + [[0.6, 1.0], [1.0, 1.0]]),
        partial_fourier_fraction=torch.tensor([1.0, 0.625, 1.0, 0.75, 1.0, 1.0]),
        partial_fourier_axis=torch.tensor([0, 1, 0, 0, 0, 0]),
        partial_fourier_side=torch.tensor([1, -1, 1, 1, 1, 1]),
        noise_sigma=torch.tensor([0.0, 0.03, 0.05, 0.0, 0.02, 0.0]),
        noise_offset=torch.arange(6) * 400 + 11,
        spike_position=torch.tensor(
            [[[0, 0]] * 3] * 2 + [[[2, -3], [0, 0], [0, 0]]] + [[[0, 0]] * 3] * 3
        ),
        spike_amplitude=torch.tensor([[0.0] * 3] * 2 + [[0.1, 0.0, 0.0]] + [[0.0] * 3] * 3),
    )

    together = simulate_acquisition(images, params)

    for row in range(6):
        alone = {name: getattr(params, name)[row : row + 1] for name in params.__dataclass_fields__}
        single = simulate_acquisition(images[row : row + 1], KspaceParams(**alone))
        torch.testing.assert_close(together[row : row + 1], single, atol=1e-6, rtol=1e-6)
