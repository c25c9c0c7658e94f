"""Centred and half-spectrum orthonormal FFTs, checked against numpy on odd and even shapes."""

import numpy as np
import pytest
import torch

from common.fft import fft2c, ifft2c, irfft2, rfft2, rfft2_frequencies, signed_index

SHAPES = [(8, 8), (9, 7), (16, 11), (5, 12)]


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES)
def test_fft2c_matches_numpy_centred_orthonormal_fft(shape):
    image = _image((2, *shape)) + 1j * _image((2, *shape), seed=1)
    axes = (-2, -1)
    expected = np.fft.fftshift(
        np.fft.fft2(np.fft.ifftshift(image, axes=axes), norm="ortho"), axes=axes
    )

    kspace = fft2c(torch.from_numpy(image.astype(np.complex64)))

    np.testing.assert_allclose(kspace.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_ifft2c_inverts_fft2c_and_dc_sits_at_the_centre(shape):
    image = torch.from_numpy(_image(shape))

    kspace = fft2c(image)
    back = ifft2c(kspace)

    torch.testing.assert_close(back.real, image, atol=1e-5, rtol=0)
    assert back.imag.abs().max() < 1e-5
    dc = kspace[shape[0] // 2, shape[1] // 2]
    assert dc.real.item() == pytest.approx(image.sum().item() / np.sqrt(image.numel()), abs=1e-4)


@pytest.mark.parametrize("shape", SHAPES)
def test_rfft2_matches_numpy_and_irfft2_round_trips(shape):
    image = _image((3, *shape))

    spectrum = rfft2(torch.from_numpy(image))
    back = irfft2(spectrum, shape[1])

    expected = np.fft.rfft2(image, norm="ortho")
    assert spectrum.shape == (3, shape[0], shape[1] // 2 + 1)
    np.testing.assert_allclose(spectrum.numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(back.numpy(), image, atol=1e-5)


def test_orthonormal_transforms_preserve_energy():
    image = torch.from_numpy(_image((24, 17)))

    energy = image.pow(2).sum()

    torch.testing.assert_close(fft2c(image).abs().pow(2).sum(), energy, rtol=1e-5, atol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_rfft2_frequencies_match_numpy_frequency_layout(shape):
    height, width = shape

    ky, kx = rfft2_frequencies(height, width)

    np.testing.assert_array_equal(ky.numpy(), np.round(np.fft.fftfreq(height) * height))
    expected_kx = np.round(np.fft.fftfreq(width) * width)[: width // 2 + 1]
    if width % 2 == 0:
        expected_kx[-1] = -width // 2  # the Nyquist column, its own negative
    np.testing.assert_array_equal(kx.numpy(), expected_kx)


def test_signed_index_wraps_into_the_symmetric_range():
    index = torch.tensor([0, 3, 4, 5, 7, -1, -4, 8])

    wrapped = signed_index(index, 8)

    assert wrapped.tolist() == [0, 3, -4, -3, -1, -1, -4, 0]
