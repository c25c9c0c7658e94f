"""How strongly and how often each synthetic site effect is applied (DESIGN.md, method step 3).

Every alteration has a ``strength`` in [0, 1] (0 = off, 1 = the strongest
plausible clinical range; the ranges are documented with each sampler in
``common.augment``) and a ``probability`` of being applied to a given sample.
A share ``identity_probability`` of samples is left untouched so that the
harmonizer also learns to leave an image alone when it already matches the
reference contrast.
"""

from typing import Self

from pydantic import BaseModel, ConfigDict, Field


class AlterationSetting(BaseModel):
    """Strength and per-sample probability of one alteration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strength: float = Field(ge=0.0, le=1.0)
    probability: float = Field(ge=0.0, le=1.0)


THROUGH_PLANE = ("through_plane_blur",)


def _setting(strength: float, probability: float) -> AlterationSetting:
    return AlterationSetting(strength=strength, probability=probability)


class AugmentationConfig(BaseModel):
    """The augmentation family; defaults give visible but realistic site differences.

    Defaults aim at what differs between clinical sites: tissue contrast and
    shading on most samples, blur or sharpening on about half, noise at SNR
    10-40 on most, ringing and partial-Fourier smearing on a few, spikes rarely;
    for a 2.5D model, blur across slices (thick or overlapping slices, a
    slice profile wider than the spacing) on about 2 in 5 stacks.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    identity_probability: float = Field(default=0.1, ge=0.0, le=1.0)
    # image domain
    intensity_curve: AlterationSetting = _setting(0.7, 0.6)
    bias_field: AlterationSetting = _setting(0.7, 0.5)
    gain_offset: AlterationSetting = _setting(0.5, 0.5)
    # k-space
    radial_gain: AlterationSetting = _setting(0.6, 0.5)
    centre_scaling: AlterationSetting = _setting(0.5, 0.3)
    apodization: AlterationSetting = _setting(0.6, 0.4)
    truncation: AlterationSetting = _setting(0.6, 0.3)
    partial_fourier: AlterationSetting = _setting(0.7, 0.2)
    noise: AlterationSetting = _setting(1.0, 0.7)
    spikes: AlterationSetting = _setting(0.5, 0.03)
    # across slices: only a 2.5D model ([model] in_channels > 1) sees it
    through_plane_blur: AlterationSetting = _setting(1.0, 0.4)

    @classmethod
    def off(cls) -> Self:
        """All strengths zero: the pipeline returns its input unchanged."""
        defaults = cls()
        zeroed = {
            name: value.model_copy(update={"strength": 0.0})
            for name, value in defaults
            if isinstance(value, AlterationSetting)
        }
        return cls(**zeroed)

    def settings(self) -> dict[str, AlterationSetting]:
        """The in-plane alterations by name, in the order they are sampled.

        The through-plane blur is not among them: it is drawn per stack of
        slices (``common.augment.stack``), so a 2D model's draws stay as they were.
        """
        return {
            name: value
            for name, value in self
            if isinstance(value, AlterationSetting) and name not in THROUGH_PLANE
        }
