"""How a site measures its reference profile and prepares its training targets.

The profile (DESIGN.md, "The method", step 2) is what makes the federation aim
at one target: every site maps its reference cases onto the merged consortium
profile before training. These settings must therefore agree across sites; the
percentiles and the number of spectrum bins are checked again when profiles
are merged.
"""

import itertools
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Nyúl-style landmarks: the tails at 1 and 99, deciles in between.
DEFAULT_PERCENTILES: tuple[float, ...] = (
    1.0,
    10.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    70.0,
    80.0,
    90.0,
    99.0,
)
# The landmark that defines profile units: it is 1.0 in every profile.
TOP_PERCENTILE = 99.0


class ProfileConfig(BaseModel):
    """Landmarks, spectrum resolution, refusal threshold and target preparation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    percentiles: tuple[float, ...] = Field(
        default=DEFAULT_PERCENTILES,
        min_length=2,
        description="Foreground percentiles used as landmarks; the last one must be 99.",
    )
    n_bins: int = Field(
        default=32,
        ge=4,
        le=256,
        description="Radial k-space bins over normalized frequency 0..0.5.",
    )
    min_cases: int = Field(
        default=3, ge=1, description="A profile from fewer reference cases is refused (privacy)."
    )
    match_sharpness: bool = Field(
        default=False, description="Also filter targets toward the profile's k-space power."
    )
    # The gain is 1 at the lowest frequencies, so the bounds bracket 1 by construction.
    sharpness_gain_min: float = Field(default=0.5, gt=0.0, le=1.0)
    sharpness_gain_max: float = Field(default=2.0, ge=1.0, le=10.0)
    bias_correction: Literal["none", "n4"] = Field(
        default="n4", description="Correction applied to reference cases before profiling."
    )

    @field_validator("percentiles")
    @classmethod
    def _percentiles_increasing_inside_range(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 < p < 100.0 for p in value):
            raise ValueError("every percentile must lie strictly between 0 and 100")
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("percentiles must be strictly increasing")
        if value[-1] != TOP_PERCENTILE:
            raise ValueError(
                f"the last percentile must be {TOP_PERCENTILE:g} (it defines profile units)"
            )
        return value
