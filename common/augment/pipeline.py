"""The augmentation family as one batched step: sample parameters, then apply them.

Sampling (:func:`sample_alterations`) draws every parameter from the caller's
generator; application (:func:`apply_alterations`) is deterministic given the
parameters, so each alteration can be logged (``AlterationParams.to_dict``)
and replayed (``AlterationParams.from_dict``).

The signal chain follows the scanner: the tissue contrast curve acts on the
object; k-space filtering, partial Fourier, spikes and noise on the
acquisition; shading, gain and offset on the magnitude image. The curve's
outer slope is a plain scale, so it joins the gain in the last step, with
noise and spikes divided by it, which is equivalent (the acquisition is
linear and the magnitude scales with it). Samples whose parameters are all
neutral are returned bitwise unchanged.
"""

import os
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import Tensor

from common.augment import cpu_path, intensity, kspace, noise
from common.configs.augmentation import AugmentationConfig
from common.errors import InputError

PARAMS_VERSION = 1
CPU_BLOCK_PIXELS = 1 << 19  # 2 MB of float32 per block: a few 256 x 256 slices stay in cache


@dataclass(frozen=True)
class AlterationParams:
    """Every parameter applied to a batch of ``B`` slices of shape ``shape``; CPU tensors.

    The meaning and sampling distribution of each field is documented with its
    sampler in :mod:`common.augment.intensity`, :mod:`common.augment.kspace`
    and :mod:`common.augment.noise`.
    """

    shape: tuple[int, int]
    curve_window: Tensor
    curve_slopes: Tensor
    bias_coefficients: Tensor
    gain: Tensor
    offset: Tensor
    band_log_gains: Tensor
    centre_log_scale: Tensor
    apodization_log_edge: Tensor
    truncation_keep: Tensor
    partial_fourier_fraction: Tensor
    partial_fourier_axis: Tensor
    partial_fourier_side: Tensor
    noise_sigma: Tensor
    noise_offset: Tensor
    spike_position: Tensor
    spike_amplitude: Tensor
    spike_phase: Tensor

    _ACQUISITION: ClassVar[tuple[str, ...]] = (
        "band_log_gains",
        "centre_log_scale",
        "apodization_log_edge",
        "truncation_keep",
        "partial_fourier_fraction",
        "noise_sigma",
        "spike_amplitude",
    )
    _SPEC: ClassVar[dict[str, tuple[torch.dtype, tuple[int, ...]]]] = {
        "curve_window": (torch.float32, (2,)),
        "curve_slopes": (torch.float32, (2,)),
        "bias_coefficients": (torch.float32, (intensity.BIAS_DEGREE + 1,) * 2),
        "gain": (torch.float32, ()),
        "offset": (torch.float32, ()),
        "band_log_gains": (torch.float32, (3,)),
        "centre_log_scale": (torch.float32, ()),
        "apodization_log_edge": (torch.float32, (2,)),
        "truncation_keep": (torch.float32, (2,)),
        "partial_fourier_fraction": (torch.float32, ()),
        "partial_fourier_axis": (torch.int64, ()),
        "partial_fourier_side": (torch.int64, ()),
        "noise_sigma": (torch.float32, ()),
        "noise_offset": (torch.int64, ()),
        "spike_position": (torch.int64, (noise.SPIKES_MAX, 2)),
        "spike_amplitude": (torch.float32, (noise.SPIKES_MAX,)),
        "spike_phase": (torch.float32, (noise.SPIKES_MAX,)),
    }

    def __post_init__(self) -> None:
        # the batch size most fields agree on, so that the odd one out is named
        values = [getattr(self, name) for name in self._SPEC]
        batch = Counter(v.shape[0] if v.dim() else -1 for v in values).most_common(1)[0][0]
        for name, (dtype, trailing) in self._SPEC.items():
            value = getattr(self, name)
            expected = (batch, *trailing)
            if value.dtype != dtype or tuple(value.shape) != expected or value.device.type != "cpu":
                raise InputError(
                    f"alteration parameters: field '{name}' is {value.dtype} "
                    f"{tuple(value.shape)} on {value.device}; expected {dtype} {expected} on cpu"
                )

    @property
    def batch_size(self) -> int:
        """Number of slices ``B`` the parameters are for."""
        return self.gain.shape[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists of numbers); :meth:`from_dict` restores it exactly."""
        data: dict[str, Any] = {"version": PARAMS_VERSION, "shape": list(self.shape)}
        data.update({name: getattr(self, name).tolist() for name in self._SPEC})
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; raises :class:`InputError` naming a bad field."""
        expected = {"version", "shape", *cls._SPEC}
        if set(data) != expected:
            problem = sorted(set(data) ^ expected)
            raise InputError(f"alteration parameters: unexpected or missing fields {problem}")
        if data["version"] != PARAMS_VERSION:
            raise InputError(
                f"alteration parameters: field 'version' = {data['version']!r}; "
                f"only {PARAMS_VERSION} is supported"
            )
        tensors = {}
        for name, (dtype, _) in cls._SPEC.items():
            try:
                tensors[name] = torch.tensor(data[name], dtype=dtype)
            except (TypeError, ValueError) as error:
                raise InputError(f"alteration parameters: field '{name}': {error}") from None
        shape = data["shape"]
        if not (isinstance(shape, list | tuple) and len(shape) == 2):
            raise InputError(f"alteration parameters: field 'shape' = {shape!r}; expected [H, W]")
        return cls(shape=(int(shape[0]), int(shape[1])), **tensors)

    def rows(self, start: int, stop: int) -> Self:
        """The parameters of slices ``start`` to ``stop`` (exclusive) of the batch."""
        return type(self)(
            shape=self.shape, **{name: getattr(self, name)[start:stop] for name in self._SPEC}
        )

    def per_slice(self, channels: int) -> Self:
        """Each sample's parameters for the ``channels`` slices of its stack, ``(B * C,)`` rows.

        The slices of a stack come from one scan, so they share every
        parameter but the noise: thermal noise is independent from slice to
        slice, so each slice gets its own window of the stream
        (:func:`common.augment.noise.stack_offsets`).
        """
        repeated = {name: getattr(self, name).repeat_interleave(channels, 0) for name in self._SPEC}
        repeated["noise_offset"] = noise.stack_offsets(self.noise_offset, channels, self.shape)
        return type(self)(shape=self.shape, **repeated)

    def kspace_rows(self) -> Tensor:
        """``(B,)`` bool: samples that go through the simulated acquisition."""
        p = {name: getattr(self, name).numpy() for name in self._ACQUISITION}
        filtered = (
            (p["band_log_gains"] != 0).any(axis=1)
            | (p["centre_log_scale"] != 0)
            | (p["apodization_log_edge"] != 0).any(axis=1)
            | (p["truncation_keep"] != 1).any(axis=1)
        )
        return torch.from_numpy(
            filtered
            | (p["partial_fourier_fraction"] != 1)
            | (p["noise_sigma"] != 0)
            | (p["spike_amplitude"] != 0).any(axis=1)
        )

    def kspace_params(self, image_scale: Tensor) -> kspace.KspaceParams:
        """The k-space parameters for images divided by ``image_scale`` ``(B,)``.

        The pipeline applies the gain and the curve's outer slope to the final
        magnitude image, not before the acquisition; dividing noise and spikes
        by the same scale makes the result equal to scaling before it (the
        receive chain adds noise after the gain is set, so the gain scales the
        noise too, and the slope is a property of the object).
        """
        selected = {f.name: getattr(self, f.name) for f in fields(kspace.KspaceParams)}
        selected["noise_sigma"] = self.noise_sigma / image_scale
        selected["spike_amplitude"] = self.spike_amplitude / image_scale[:, None]
        return kspace.KspaceParams(**selected)


def sample_alterations(
    config: AugmentationConfig,
    batch_size: int,
    shape: tuple[int, int],
    generator: torch.Generator,
) -> AlterationParams:
    """Draw the parameters of every alteration for ``batch_size`` slices of ``shape`` (H, W).

    ``generator`` must be a CPU generator; the global RNG is never used. Each
    sample is left unaltered with ``config.identity_probability``; otherwise
    each alteration is switched on with its probability (and never at
    strength 0). The number of draws does not depend on the config values, so
    one seed gives comparable batches across configs.
    """
    return sample_with_identity(config, batch_size, shape, generator)[0]


def sample_with_identity(
    config: AugmentationConfig,
    batch_size: int,
    shape: tuple[int, int],
    generator: torch.Generator,
) -> tuple[AlterationParams, Tensor]:
    """:func:`sample_alterations`, and which samples ``(B,)`` were drawn to stay unaltered.

    Alterations sampled elsewhere (the through-plane blur of a stack) need
    the identity draw so that an identity sample stays untouched by them too.
    """
    if generator.device.type != "cpu":
        raise ValueError(f"sample_alterations needs a CPU generator, got {generator.device}")
    batch, settings = batch_size, config.settings()
    names = list(settings)
    draws = torch.rand((batch, len(names) + 1), generator=generator)
    identity = draws[:, :1] < config.identity_probability
    probability = torch.tensor([settings[name].probability for name in names])
    chosen = (draws[:, 1:] < probability) & ~identity

    def on(name: str) -> tuple[float, Tensor]:
        strength = settings[name].strength
        return strength, chosen[:, names.index(name)] & (strength > 0)

    window, slopes = intensity.sample_intensity_curve(*on("intensity_curve"), generator)
    bias = intensity.sample_bias_field(*on("bias_field"), generator)
    gain, offset = intensity.sample_gain_offset(*on("gain_offset"), generator)
    bands = kspace.sample_radial_gain(*on("radial_gain"), generator)
    centre = kspace.sample_centre_scaling(*on("centre_scaling"), generator)
    apodization = kspace.sample_apodization(*on("apodization"), generator)
    keep = kspace.sample_truncation(*on("truncation"), generator)
    fraction, axis, side = kspace.sample_partial_fourier(*on("partial_fourier"), generator)
    sigma, noise_offset = noise.sample_noise(*on("noise"), generator, shape)
    position, amplitude, phase = noise.sample_spikes(*on("spikes"), generator, shape)
    params = AlterationParams(
        shape=(int(shape[0]), int(shape[1])),
        curve_window=window,
        curve_slopes=slopes,
        bias_coefficients=bias,
        gain=gain,
        offset=offset,
        band_log_gains=bands,
        centre_log_scale=centre,
        apodization_log_edge=apodization,
        truncation_keep=keep,
        partial_fourier_fraction=fraction,
        partial_fourier_axis=axis,
        partial_fourier_side=side,
        noise_sigma=sigma,
        noise_offset=noise_offset,
        spike_position=position,
        spike_amplitude=amplitude,
        spike_phase=phase,
    )
    return params, identity[:, 0]


def apply_alterations(images: Tensor, params: AlterationParams) -> Tensor:
    """Apply ``params`` to float32 ``images`` ``(B, H, W)`` on any device; deterministic.

    Returns a new real, non-negative tensor of the same shape, dtype and device
    (given non-negative input). Samples with neutral parameters come back
    bitwise unchanged; the input is never modified. On a CPU the batch goes
    through in blocks of about :data:`CPU_BLOCK_PIXELS`: every step works
    row by row, so blocks give the same result, and a block's intermediates
    stay in the cache. There the elementwise steps run as three compiled
    loops (:mod:`common.augment.cpu_path`), equal to the torch path to float32
    rounding and about a quarter cheaper in all (docs/benchmarks.md).
    """
    if images.dim() != 3 or images.dtype != torch.float32:
        raise ValueError(f"expected float32 (B, H, W) images, got {images.dtype} {images.shape}")
    if (images.shape[0], *images.shape[1:]) != (params.batch_size, *params.shape):
        raise ValueError(
            f"images {tuple(images.shape)} do not match parameters for "
            f"{params.batch_size} slices of {params.shape}"
        )
    batch, height, width = images.shape
    if images.device.type == "cpu" and not images.requires_grad and fused_cpu_enabled():
        return cpu_path.apply_on_cpu(images, params, CPU_BLOCK_PIXELS)
    if images.device.type != "cpu" or batch * height * width <= CPU_BLOCK_PIXELS:
        return _apply_block(images, params)
    rows = max(1, CPU_BLOCK_PIXELS // (height * width))
    result = torch.empty_like(images)
    for start in range(0, batch, rows):
        stop = min(start + rows, batch)
        _apply_block(images[start:stop], params.rows(start, stop), out=result[start:stop])
    return result


def _apply_block(images: Tensor, params: AlterationParams, out: Tensor | None = None) -> Tensor:
    """:func:`apply_alterations` on one block of rows, written into ``out`` if given."""
    slope = params.curve_slopes[:, 0]
    altered = images
    if bool((params.curve_slopes[:, 1] != slope).any()):
        altered = intensity.curve_shape(images, params.curve_window, params.curve_slopes)
    acquired = params.kspace_rows().numpy()
    if acquired.any():
        # All rows share the transforms (one batched call is cheaper than
        # gathering the altered rows); untouched rows are put back afterwards.
        magnitude = kspace.simulate_acquisition(altered, params.kspace_params(slope))
        for row in np.flatnonzero(~acquired).tolist():
            magnitude[row].copy_(altered[row])
        altered = magnitude
    return intensity.shade(
        altered, params.bias_coefficients, slope * params.gain, params.offset, out=out
    )


class Augmenter:
    """Sample and apply in one call: ``altered, params = Augmenter(config)(images, generator)``."""

    def __init__(self, config: AugmentationConfig) -> None:
        self.config = config

    def __call__(
        self, images: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, AlterationParams]:
        """``images`` float32 ``(B, H, W)`` -> (altered images ``(B, H, W)``, parameters)."""
        batch, height, width = images.shape
        params = sample_alterations(self.config, batch, (height, width), generator)
        return apply_alterations(images, params), params


def fused_cpu_enabled() -> bool:
    """Whether CPU blocks go through the compiled kernels of :mod:`common.augment.fused`.

    On by default; ``FEDHARMONIZE_FUSED_AUGMENT=0`` selects the plain torch
    path (the reference the kernels are tested against), e.g. to compare.
    """
    return os.environ.get("FEDHARMONIZE_FUSED_AUGMENT", "1") != "0"
