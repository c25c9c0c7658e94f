"""Architecture of the harmonization U-Net, saved beside its weights."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class UNetConfig(BaseModel):
    """Every hyperparameter of :class:`common.model.HarmonizerUNet`.

    The normalization is GroupNorm or InstanceNorm, never BatchNorm: running
    statistics would be averaged across sites by FedAvg and mean nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_channels: int = Field(default=1, ge=1, le=9, description="slices fed in (odd: 2.5D)")
    base_channels: int = Field(default=16, ge=4, le=128)
    depth: int = Field(default=3, ge=1, le=6, description="number of 2x downsamplings")
    norm: Literal["group", "instance"] = "group"
    groups: int = Field(default=8, ge=1, le=64)
    residual: bool = True

    @model_validator(mode="after")
    def _check(self) -> "UNetConfig":
        if self.in_channels % 2 == 0:
            raise ValueError(
                f"in_channels={self.in_channels} must be odd, so one slice is the centre"
            )
        if self.norm == "group" and self.base_channels % self.groups:
            raise ValueError(
                f"base_channels={self.base_channels} must be a multiple of groups={self.groups}"
            )
        return self
