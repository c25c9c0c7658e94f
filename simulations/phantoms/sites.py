"""Sites and consortia: a site is a protocol per modality plus its scanner effects.

A researcher can describe their own consortium in TOML (see
:data:`EXAMPLE_TOML`); :func:`load_consortium` validates it into frozen pydantic
models and reports a bad value in one line that names the field.
"""

import string
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.configs.validation import parse_config
from common.errors import ConfigError
from simulations.phantoms.scanner import ScannerEffects
from simulations.phantoms.sequences import (
    InversionRecoveryGradientEcho,
    Protocol,
    SpinEcho,
    SpoiledGradientEcho,
)

Modality = Literal["T1w", "T2w"]
MODALITIES: tuple[Modality, ...] = ("T1w", "T2w")
SITE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$"
MAX_SITES = 26

REFERENCE_PROTOCOLS: dict[Modality, Protocol] = {
    "T1w": InversionRecoveryGradientEcho(
        field_strength_t=3.0, tr_ms=2300, ti_ms=1100, te_ms=3, flip_angle_deg=9
    ),
    "T2w": SpinEcho(field_strength_t=3.0, tr_ms=4000, te_ms=90),
}

EXAMPLE_TOML = """\
reference_site = "uni-hospital"          # a site close to reference quality

[reference_protocols.T1w]                # optional: the ground-truth protocol
sequence = "ir-gre"
field_strength_t = 3.0
tr_ms = 2300
ti_ms = 1100
te_ms = 3
flip_angle_deg = 9

[[sites]]
name = "uni-hospital"
[sites.protocols.T1w]
sequence = "ir-gre"                      # ir-gre, spoiled-gre or spin-echo
field_strength_t = 3.0
tr_ms = 2300
ti_ms = 1100
te_ms = 3
flip_angle_deg = 9
[sites.effects]
snr = 50
bias_strength = 0.05

[[sites]]
name = "city-clinic"
[sites.protocols.T1w]
sequence = "spin-echo"
field_strength_t = 1.5
tr_ms = 500
te_ms = 15
[sites.effects]
snr = 15
bias_strength = 0.2
blur_fwhm_mm = [2.0, 2.0, 5.0]           # x, y, z; z is through-plane
kspace_fraction = [0.6, 0.6, 1.0]        # < 1 truncates k-space: Gibbs ringing
gain = 300
offset = 10
"""


class SiteConfig(BaseModel):
    """One site: its protocol for each modality it scans, and its scanner effects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SITE_NAME_PATTERN)
    protocols: dict[Modality, Protocol] = Field(min_length=1)
    effects: ScannerEffects = ScannerEffects()


class ConsortiumConfig(BaseModel):
    """All sites, the reference (ground-truth) protocols and the reference-quality site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference_site: str
    reference_protocols: dict[Modality, Protocol] = Field(
        default_factory=lambda: dict(REFERENCE_PROTOCOLS)
    )
    sites: tuple[SiteConfig, ...] = Field(min_length=1, max_length=MAX_SITES)

    @field_validator("reference_protocols", mode="before")
    @classmethod
    def _keep_default_protocols(cls, value: object) -> object:
        """A file that sets only the T1w reference keeps the default T2w one, and vice versa."""
        if isinstance(value, Mapping):
            return {**REFERENCE_PROTOCOLS, **value}
        return value

    @model_validator(mode="after")
    def _names_consistent(self) -> Self:
        names = [site.name for site in self.sites]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"site names must be unique; repeated: {', '.join(duplicates)}")
        if self.reference_site not in names:
            listed = ", ".join(names)
            raise ValueError(f"reference_site {self.reference_site!r} is not a site ({listed})")
        return self

    def check_modality(self, modality: Modality, source: str) -> None:
        """Refuse, in one line, a modality that the reference or some site does not scan."""
        if modality not in self.reference_protocols:
            raise ConfigError(f"{source}: reference_protocols has no {modality} protocol")
        missing = [site.name for site in self.sites if modality not in site.protocols]
        if missing:
            raise ConfigError(
                f"{source}: sites without a {modality} protocol: {', '.join(missing)}"
            )


def default_sites() -> tuple[SiteConfig, ...]:
    """Three sites with visibly different T1w contrast; site-a is near reference quality."""
    return (
        SiteConfig(
            name="site-a",
            protocols={
                "T1w": REFERENCE_PROTOCOLS["T1w"],
                "T2w": REFERENCE_PROTOCOLS["T2w"],
            },
            effects=ScannerEffects(snr=50, bias_strength=0.05, bias_scale_mm=150, gain=1000),
        ),
        SiteConfig(
            name="site-b",
            protocols={
                "T1w": SpoiledGradientEcho(
                    field_strength_t=1.5, tr_ms=20, te_ms=5, flip_angle_deg=30
                ),
                "T2w": SpinEcho(field_strength_t=1.5, tr_ms=3000, te_ms=100),
            },
            effects=ScannerEffects(
                snr=25,
                bias_strength=0.25,
                bias_scale_mm=90,
                blur_fwhm_mm=(1.5, 1.5, 5.0),
                gain=4000,
                offset=40,
            ),
        ),
        SiteConfig(
            name="site-c",
            protocols={
                "T1w": SpinEcho(field_strength_t=1.5, tr_ms=500, te_ms=15),
                "T2w": SpinEcho(field_strength_t=1.5, tr_ms=5000, te_ms=120),
            },
            effects=ScannerEffects(
                snr=18,
                bias_strength=0.15,
                bias_scale_mm=120,
                kspace_fraction=(0.5, 0.5, 0.8),
                gain=300,
            ),
        ),
    )


def default_consortium() -> ConsortiumConfig:
    return ConsortiumConfig(reference_site="site-a", sites=default_sites())


def site_name(index: int) -> str:
    """'site-a', 'site-b', ... for index 0, 1, ..."""
    return f"site-{string.ascii_lowercase[index]}"


def _random_t1w(rng: np.random.Generator) -> Protocol:
    """A T1w protocol whose ranges keep WM > GM > CSF at 1.5 T and 3 T."""
    field = float(rng.choice([1.5, 3.0]))
    kind = rng.integers(3)
    if kind == 0:
        ti_range = (1000.0, 1200.0) if field == 3.0 else (850.0, 1000.0)
        return InversionRecoveryGradientEcho(
            field_strength_t=field,
            tr_ms=round(float(rng.uniform(1900, 2600))),
            ti_ms=round(float(rng.uniform(*ti_range))),
            te_ms=round(float(rng.uniform(2.5, 4.0)), 1),
            flip_angle_deg=round(float(rng.uniform(7, 12))),
        )
    if kind == 1:
        return SpoiledGradientEcho(
            field_strength_t=field,
            tr_ms=round(float(rng.uniform(12, 30)), 1),
            te_ms=round(float(rng.uniform(3, 6)), 1),
            flip_angle_deg=round(float(rng.uniform(20, 40))),
        )
    return SpinEcho(
        field_strength_t=field,
        tr_ms=round(float(rng.uniform(400, 700))),
        te_ms=round(float(rng.uniform(10, 20)), 1),
    )


def random_site(name: str, rng: np.random.Generator) -> SiteConfig:
    """A plausible site drawn at random.

    Distributions: T1w sequence uniform over IR-GRE, SPGR and SE at 1.5 or 3 T; T2w
    SE with TR ~ U(2500, 6000) ms, TE ~ U(80, 120) ms; SNR ~ U(15, 60); bias
    strength ~ U(0.05, 0.3) over U(70, 160) mm; in-plane blur ~ U(0, 2.5) mm FWHM,
    through-plane blur ~ U(3, 6) mm for half the sites; k-space truncation to
    U(0.5, 0.85) in-plane for half the sites; gain log-uniform in [100, 5000];
    offset 0 or U(0, 50).
    """
    t2w = SpinEcho(
        field_strength_t=float(rng.choice([1.5, 3.0])),
        tr_ms=round(float(rng.uniform(2500, 6000))),
        te_ms=round(float(rng.uniform(80, 120))),
    )
    in_plane = round(float(rng.uniform(0.0, 2.5)), 2)
    through_plane = round(float(rng.uniform(3.0, 6.0)), 2) if rng.random() < 0.5 else in_plane
    kept = round(float(rng.uniform(0.5, 0.85)), 2) if rng.random() < 0.5 else 1.0
    effects = ScannerEffects(
        snr=round(float(rng.uniform(15, 60)), 1),
        bias_strength=round(float(rng.uniform(0.05, 0.3)), 3),
        bias_scale_mm=round(float(rng.uniform(70, 160))),
        blur_fwhm_mm=(in_plane, in_plane, through_plane),
        kspace_fraction=(kept, kept, 1.0),
        gain=round(float(np.exp(rng.uniform(np.log(100), np.log(5000))))),
        offset=round(float(rng.uniform(0, 50)), 1) if rng.random() < 0.5 else 0.0,
    )
    return SiteConfig(name=name, protocols={"T1w": _random_t1w(rng), "T2w": t2w}, effects=effects)


def build_consortium(n_sites: int, seed: int) -> ConsortiumConfig:
    """The first ``n_sites`` default sites, then random ones (site-d, site-e, ...)."""
    if not 1 <= n_sites <= MAX_SITES:
        raise ConfigError(f"--sites {n_sites}: must be between 1 and {MAX_SITES}")
    sites = list(default_sites()[:n_sites])
    for index in range(len(sites), n_sites):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 3, index]))
        sites.append(random_site(site_name(index), rng))
    return ConsortiumConfig(reference_site=sites[0].name, sites=tuple(sites))


def load_consortium(path: Path) -> ConsortiumConfig:
    """Read a consortium TOML file; any problem becomes a one-line :class:`ConfigError`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: sites config not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    return parse_config(ConsortiumConfig, data, str(path))
