"""Acquisition protocols and the signal equations that turn tissue into contrast.

Each voxel holds fractions of several tissues (partial volume), so its signal is
the fraction-weighted sum of the tissues' steady-state signals. The equations are
the textbook ideal-spoiling forms (Bernstein, King and Zhou, Handbook of MRI
Pulse Sequences, 2004): they ignore B1 errors and slice profiles, which the
scanner effects stand in for.

A T2-weighted spin echo is the spin-echo protocol with long TR and TE; it is the
second modality and needs no separate equation.
"""

import math
from collections.abc import Mapping
from typing import Annotated, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulations.phantoms.tissues import FieldStrength, Tissue, TissueParameters


def spin_echo(pd: float, t1: float, t2: float, tr: float, te: float) -> float:
    """90-180 spin echo: PD (1 - 2 exp(-(TR - TE/2)/T1) + exp(-TR/T1)) exp(-TE/T2)."""
    recovery = 1.0 - 2.0 * math.exp(-(tr - te / 2.0) / t1) + math.exp(-tr / t1)
    return pd * recovery * math.exp(-te / t2)


def spoiled_gradient_echo(
    pd: float, t1: float, t2_star: float, tr: float, te: float, flip_deg: float
) -> float:
    """Spoiled GRE (FLASH/SPGR) steady state: PD sin(a) (1 - E1) / (1 - cos(a) E1) exp(-TE/T2*)."""
    alpha = math.radians(flip_deg)
    e1 = math.exp(-tr / t1)
    return (
        pd * math.sin(alpha) * (1.0 - e1) / (1.0 - math.cos(alpha) * e1) * math.exp(-te / t2_star)
    )


def inversion_recovery_gradient_echo(
    pd: float, t1: float, t2_star: float, tr: float, ti: float, te: float, flip_deg: float
) -> float:
    """MPRAGE-like IR-GRE magnitude: PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| sin(a) exp(-TE/T2*).

    TR is the time between inversions. The readout train's own saturation is left
    out, which darkens GM more than a real MPRAGE does; a TI near 1.1 s at 3 T
    gives the usual GM/WM ratio of about one half.
    """
    recovery = 1.0 - 2.0 * math.exp(-ti / t1) + math.exp(-tr / t1)
    return pd * abs(recovery) * math.sin(math.radians(flip_deg)) * math.exp(-te / t2_star)


class _ProtocolBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field_strength_t: FieldStrength = Field(description="main field in tesla: 1.5 or 3.0")


class SpinEcho(_ProtocolBase):
    """Spin echo: T1-weighted with short TR/TE, T2-weighted with long TR/TE."""

    sequence: Literal["spin-echo"] = "spin-echo"
    tr_ms: float = Field(gt=0, le=20000)
    te_ms: float = Field(gt=0, le=400)

    @model_validator(mode="after")
    def _te_inside_tr(self) -> Self:
        if self.te_ms >= self.tr_ms:
            raise ValueError(f"te_ms ({self.te_ms}) must be shorter than tr_ms ({self.tr_ms})")
        return self

    def tissue_signal(self, p: TissueParameters) -> float:
        return spin_echo(p.pd, p.t1_ms, p.t2_ms, self.tr_ms, self.te_ms)

    def label(self) -> str:
        return f"SE {self.field_strength_t:g}T TR{self.tr_ms:g}/TE{self.te_ms:g}"


class SpoiledGradientEcho(_ProtocolBase):
    """Spoiled gradient echo (SPGR/FLASH); T1 weighting grows with the flip angle."""

    sequence: Literal["spoiled-gre"] = "spoiled-gre"
    tr_ms: float = Field(gt=0, le=200)
    te_ms: float = Field(gt=0, le=50)
    flip_angle_deg: float = Field(gt=0, le=90)

    @model_validator(mode="after")
    def _te_inside_tr(self) -> Self:
        if self.te_ms >= self.tr_ms:
            raise ValueError(f"te_ms ({self.te_ms}) must be shorter than tr_ms ({self.tr_ms})")
        return self

    def tissue_signal(self, p: TissueParameters) -> float:
        return spoiled_gradient_echo(
            p.pd, p.t1_ms, p.t2_ms, self.tr_ms, self.te_ms, self.flip_angle_deg
        )

    def label(self) -> str:
        return f"SPGR {self.field_strength_t:g}T TR{self.tr_ms:g} FA{self.flip_angle_deg:g}"


class InversionRecoveryGradientEcho(_ProtocolBase):
    """Inversion-prepared gradient echo (MPRAGE-like); TR is the inversion repetition time."""

    sequence: Literal["ir-gre"] = "ir-gre"
    tr_ms: float = Field(gt=0, le=10000)
    ti_ms: float = Field(gt=0, le=5000)
    te_ms: float = Field(gt=0, le=20)
    flip_angle_deg: float = Field(gt=0, le=30)

    @model_validator(mode="after")
    def _ti_inside_tr(self) -> Self:
        if self.ti_ms >= self.tr_ms:
            raise ValueError(f"ti_ms ({self.ti_ms}) must be shorter than tr_ms ({self.tr_ms})")
        return self

    def tissue_signal(self, p: TissueParameters) -> float:
        return inversion_recovery_gradient_echo(
            p.pd, p.t1_ms, p.t2_ms, self.tr_ms, self.ti_ms, self.te_ms, self.flip_angle_deg
        )

    def label(self) -> str:
        return f"IR-GRE {self.field_strength_t:g}T TI{self.ti_ms:g}"


Protocol = Annotated[
    SpinEcho | SpoiledGradientEcho | InversionRecoveryGradientEcho,
    Field(discriminator="sequence"),
]


def tissue_signals(
    protocol: SpinEcho | SpoiledGradientEcho | InversionRecoveryGradientEcho,
    params: Mapping[Tissue, TissueParameters],
) -> dict[Tissue, float]:
    """Pure-tissue signal of every tissue under ``protocol`` (arbitrary units)."""
    return {tissue: protocol.tissue_signal(p) for tissue, p in params.items()}


def render(
    protocol: SpinEcho | SpoiledGradientEcho | InversionRecoveryGradientEcho,
    fractions: Mapping[Tissue, np.ndarray],
    params: Mapping[Tissue, TissueParameters],
) -> np.ndarray:
    """Partial-volume image: sum over tissues of fraction x pure-tissue signal (float32)."""
    signals = tissue_signals(protocol, params)
    shape = next(iter(fractions.values())).shape
    image = np.zeros(shape, dtype=np.float32)
    for tissue, fraction in fractions.items():
        image += np.float32(signals[tissue]) * fraction
    return image
