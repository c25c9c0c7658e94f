"""The augmentation of a stack of neighbouring slices, for a 2.5D harmonizer.

All slices of a stack come from one scan: they share one contrast curve, bias
field, gain, k-space filter and partial-Fourier setting, but each has its own
thermal noise (:meth:`AlterationParams.per_slice`). Before those in-plane
alterations, the clean stack may be blurred across slices: a 2D network
cannot see that blur, a network that sees neighbours can learn to undo it.

Sampling and applying are separate, as in :mod:`common.augment.pipeline`: the
applied parameters are returned and :func:`apply_stack_alterations` replays
them exactly.
"""

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from common.augment.intensity import uniform
from common.augment.pipeline import (
    AlterationParams,
    apply_alterations,
    sample_alterations,
    sample_with_identity,
)
from common.configs.augmentation import AugmentationConfig

THROUGH_PLANE_FWHM = (1.0, 3.0)  # slices, at strength 1
THROUGH_PLANE_MARGIN = 3  # slices each side beyond the model's: 2.4 sigma at FWHM 3
FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))


def context_slices(in_channels: int) -> int:
    """Neighbours each side that training a model of ``in_channels`` slices gathers.

    The model's own half-width, plus :data:`THROUGH_PLANE_MARGIN` so that the
    through-plane blur of the outer channels reads real neighbours; 0 for a
    2D model, which needs none.
    """
    return 0 if in_channels == 1 else in_channels // 2 + THROUGH_PLANE_MARGIN


@dataclass(frozen=True)
class StackAlterations:
    """What was applied to ``B`` stacks of ``channels`` slices.

    ``fwhm`` ``(B,)`` is the through-plane Gaussian FWHM in slices (0: no
    blur); ``params`` has ``B * channels`` rows, stack by stack.
    """

    channels: int
    fwhm: Tensor
    params: AlterationParams


def sample_through_plane_blur(strength: float, on: Tensor, generator: torch.Generator) -> Tensor:
    """Gaussian FWHM across slices ``(B,)``, in slices.

    Physical cause: a slice profile wider than the slice spacing (thick or
    overlapping slices, a soft excitation pulse, a volume resliced from a
    coarser acquisition) mixes each slice with its neighbours. FWHM ~ U(1 s,
    3 s) slices at strength s (a 5 mm profile at 2 mm spacing is 2.5).
    Neutral: 0.
    """
    fwhm = uniform(generator, (on.shape[0],), *THROUGH_PLANE_FWHM) * strength
    return torch.where(on, fwhm, 0.0)


def blur_through_plane(stacks: Tensor, fwhm: Tensor, channels: int) -> Tensor:
    """The ``channels`` centre slices of ``stacks`` ``(B, S, H, W)``, blurred across slices.

    Each output slice is a Gaussian-weighted sum of the slices up to
    ``(S - channels) // 2`` either side (the kernel is cut there and
    normalized), so the centre slices read only real neighbours. Stacks with
    FWHM 0 come back bitwise unchanged (a view when none is blurred).
    Returns ``(B, channels, H, W)``.
    """
    margin = (stacks.shape[1] - channels) // 2
    clean = stacks[:, margin : margin + channels]
    blurred = torch.nonzero(fwhm > 0).flatten()
    if margin == 0 or blurred.numel() == 0:
        return clean
    result = clean.clone()
    sigma = (fwhm[blurred] / FWHM_PER_SIGMA).to(stacks.device, stacks.dtype)
    taps = torch.arange(-margin, margin + 1, device=stacks.device, dtype=stacks.dtype)
    weights = torch.exp(-0.5 * (taps[None, :] / sigma[:, None]) ** 2)
    weights = weights / weights.sum(dim=1, keepdim=True)
    rows = blurred.to(stacks.device)
    chosen = stacks[rows]
    total = torch.zeros_like(chosen[:, :channels])
    for tap in range(2 * margin + 1):
        total += weights[:, tap, None, None, None] * chosen[:, tap : tap + channels]
    result[rows] = total
    return result


def sample_stack_alterations(
    config: AugmentationConfig,
    batch_size: int,
    channels: int,
    shape: tuple[int, int],
    generator: torch.Generator,
) -> StackAlterations:
    """Parameters for ``batch_size`` stacks of ``channels`` slices of ``shape`` (H, W).

    One slice (``channels`` 1) draws exactly what :func:`sample_alterations`
    draws and no blur. A stack draws the same in-plane parameters first, then
    whether (with ``through_plane_blur.probability``, never for an identity
    sample) and how strongly it is blurred across slices.
    """
    if channels == 1:
        params = sample_alterations(config, batch_size, shape, generator)
        return StackAlterations(channels=1, fwhm=torch.zeros(batch_size), params=params)
    params, identity = sample_with_identity(config, batch_size, shape, generator)
    setting = config.through_plane_blur
    on = torch.rand(batch_size, generator=generator) < setting.probability
    on = on & ~identity & (setting.strength > 0)
    fwhm = sample_through_plane_blur(setting.strength, on, generator)
    return StackAlterations(channels=channels, fwhm=fwhm, params=params.per_slice(channels))


def apply_stack_alterations(stacks: Tensor, alterations: StackAlterations) -> Tensor:
    """Apply ``alterations`` to float32 clean ``stacks`` ``(B, S, H, W)``; deterministic.

    Through-plane blur first (it happens in the object's slice profile), then
    the in-plane alterations of each slice. Returns ``(B, C, H, W)``: the C
    centre slices.
    """
    batch, _, height, width = stacks.shape
    channels = alterations.channels
    clean = blur_through_plane(stacks, alterations.fwhm, channels)
    altered = apply_alterations(clean.reshape(batch * channels, height, width), alterations.params)
    return altered.reshape(batch, channels, height, width)


class StackAugmenter:
    """Sample and apply in one call: ``altered, applied = StackAugmenter(config, C)(stacks, g)``."""

    def __init__(self, config: AugmentationConfig, channels: int) -> None:
        self.config = config
        self.channels = channels

    def __call__(
        self, stacks: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, StackAlterations]:
        """``stacks`` float32 ``(B, S, H, W)``, S >= C odd -> (altered ``(B, C, H, W)``, params)."""
        batch, depth, height, width = stacks.shape
        if depth < self.channels or (depth - self.channels) % 2:
            raise ValueError(f"stacks of {depth} slices cannot centre {self.channels} channels")
        alterations = sample_stack_alterations(
            self.config, batch, self.channels, (height, width), generator
        )
        return apply_stack_alterations(stacks, alterations), alterations
