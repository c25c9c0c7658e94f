"""Per-tissue relaxation times and proton density at 1.5 T and 3 T.

Values (T1 and T2 in ms, PD relative to free water):

- WM and GM T1: Wright PJ, Mougin OE, Totman JJ, et al. Water proton T1
  measurements in brain tissue at 7, 3, and 1.5 T using IR-EPI, IR-TSE, and
  MPRAGE. MAGMA 2008;21:121-130 (WM 646 / 838 ms, GM 1197 / 1607 ms at 1.5 / 3 T).
- WM and GM T2: Stanisz GJ, Odrobina EE, Pun J, et al. T1, T2 relaxation and
  magnetization transfer in tissue at 3T. Magn Reson Med 2005;54:507-512
  (WM 72 / 69 ms, GM 95 / 99 ms at 1.5 / 3 T).
- CSF T1 about 4.3 s at both fields: Rooney WD, Johnson G, Li X, et al. Magnetic
  field and tissue dependencies of human brain longitudinal 1H2O relaxation in
  vivo. Magn Reson Med 2007;57:308-318. CSF T2 is set to 2000 ms, a round value
  inside the reported in-vivo range (about 1-2.5 s); with every TE used here CSF
  stays far from T2 decay, so the exact value barely moves the signal.
- PD: water content about 0.69 in WM and 0.80 in GM (Neeb H, Zilles K, Shah NJ.
  A new method for fast quantitative mapping of absolute water content in vivo.
  NeuroImage 2006;31:1156-1168); CSF 1.0.
- Subcutaneous fat (the optional scalp layer): de Bazelaire CMJ, Duhamel GD,
  Rofsky NM, Alsop DC. MR imaging relaxation times of abdominal and pelvic tissues
  measured in vivo at 3.0 T. Radiology 2004;230:652-659 (T1 343 / 382 ms, T2 58 /
  68 ms at 1.5 / 3 T). Fat PD 0.9 is a conventional simulator value, not a measurement.

Gradient-echo sequences need T2*; the table has none, so T2 stands in for it.
With the TE of a few ms used here, that changes signals by a few percent.
"""

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

Tissue = Literal["gm", "wm", "csf", "fat"]
TISSUES: tuple[Tissue, ...] = ("gm", "wm", "csf", "fat")
FieldStrength = Literal[1.5, 3.0]


@dataclass(frozen=True)
class TissueParameters:
    """Relaxation times in ms and proton density relative to water."""

    t1_ms: float
    t2_ms: float
    pd: float


LITERATURE: dict[float, dict[Tissue, TissueParameters]] = {
    1.5: {
        "gm": TissueParameters(t1_ms=1197.0, t2_ms=95.0, pd=0.80),
        "wm": TissueParameters(t1_ms=646.0, t2_ms=72.0, pd=0.69),
        "csf": TissueParameters(t1_ms=4300.0, t2_ms=2000.0, pd=1.0),
        "fat": TissueParameters(t1_ms=343.0, t2_ms=58.0, pd=0.9),
    },
    3.0: {
        "gm": TissueParameters(t1_ms=1607.0, t2_ms=99.0, pd=0.80),
        "wm": TissueParameters(t1_ms=838.0, t2_ms=69.0, pd=0.69),
        "csf": TissueParameters(t1_ms=4300.0, t2_ms=2000.0, pd=1.0),
        "fat": TissueParameters(t1_ms=382.0, t2_ms=68.0, pd=0.9),
    },
}


@dataclass(frozen=True)
class TissueJitter:
    """Per-subject multiplicative factors on T1, T2 and PD of every tissue.

    A subject's tissues differ a little from the literature means (age, myelin,
    hydration); the same factors apply at every field strength, so a traveling
    subject keeps its own tissue properties at every site.
    """

    factors: dict[Tissue, tuple[float, float, float]]

    @classmethod
    def sample(cls, rng: np.random.Generator, relative_sd: float = 0.03) -> "TissueJitter":
        """Each factor is exp(N(0, relative_sd)), clipped to +-3 standard deviations."""
        draws = np.clip(rng.standard_normal((len(TISSUES), 3)), -3.0, 3.0)
        values = np.exp(relative_sd * draws)
        return cls({tissue: tuple(float(v) for v in values[i]) for i, tissue in enumerate(TISSUES)})

    @classmethod
    def none(cls) -> "TissueJitter":
        return cls({tissue: (1.0, 1.0, 1.0) for tissue in TISSUES})


def tissue_parameters(
    field_strength: float, jitter: TissueJitter | None = None
) -> dict[Tissue, TissueParameters]:
    """The literature table at ``field_strength`` (1.5 or 3.0 T), times the subject's jitter."""
    if field_strength not in LITERATURE:
        raise ValueError(f"no tissue table for {field_strength} T (have 1.5 and 3.0)")
    table = LITERATURE[field_strength]
    if jitter is None:
        return dict(table)
    return {
        tissue: replace(
            params,
            t1_ms=params.t1_ms * jitter.factors[tissue][0],
            t2_ms=params.t2_ms * jitter.factors[tissue][1],
            pd=params.pd * jitter.factors[tissue][2],
        )
        for tissue, params in table.items()
    }
