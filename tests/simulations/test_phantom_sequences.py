import math

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from simulations.phantoms.sequences import (
    InversionRecoveryGradientEcho,
    Protocol,
    SpinEcho,
    SpoiledGradientEcho,
    inversion_recovery_gradient_echo,
    render,
    spin_echo,
    spoiled_gradient_echo,
    tissue_signals,
)
from simulations.phantoms.sites import REFERENCE_PROTOCOLS, default_sites, random_site
from simulations.phantoms.tissues import tissue_parameters


def t1w_and_t2w_protocols() -> list[tuple[str, object]]:
    protocols = [(f"reference {m}", p) for m, p in REFERENCE_PROTOCOLS.items()]
    for site in default_sites():
        protocols += [(f"{site.name} {m}", p) for m, p in site.protocols.items()]
    for seed in range(40):
        site = random_site(f"random-{seed}", np.random.default_rng(seed))
        protocols += [(f"random-{seed} {m}", p) for m, p in site.protocols.items()]
    return protocols


@pytest.mark.parametrize(("name", "protocol"), t1w_and_t2w_protocols())
def test_tissue_ordering_follows_the_physics(name: str, protocol: object) -> None:
    signals = tissue_signals(protocol, tissue_parameters(protocol.field_strength_t))

    if name.endswith("T1w"):
        assert signals["wm"] > signals["gm"] > signals["csf"] > 0, name
    else:
        assert signals["csf"] > signals["gm"] > signals["wm"] > 0, name


def test_spin_echo_with_full_recovery_and_no_decay_gives_proton_density() -> None:
    assert spin_echo(0.8, 1000.0, 100.0, tr=1e6, te=1e-6) == pytest.approx(0.8, rel=1e-6)
    assert spin_echo(0.8, 1000.0, 100.0, tr=1e6, te=100.0) == pytest.approx(0.8 / math.e, rel=1e-4)


def test_spoiled_gradient_echo_peaks_at_the_ernst_angle() -> None:
    t1, tr = 1000.0, 20.0
    ernst = math.degrees(math.acos(math.exp(-tr / t1)))

    at_ernst = spoiled_gradient_echo(1.0, t1, 50.0, tr, 2.0, ernst)
    around = [spoiled_gradient_echo(1.0, t1, 50.0, tr, 2.0, ernst + d) for d in (-3, 3)]

    assert all(value < at_ernst for value in around)


def test_inversion_recovery_nulls_at_t1_ln2() -> None:
    t1 = 900.0
    nulled = inversion_recovery_gradient_echo(1.0, t1, 50.0, 1e6, t1 * math.log(2), 1.0, 10.0)
    early = inversion_recovery_gradient_echo(1.0, t1, 50.0, 1e6, 100.0, 1.0, 10.0)

    assert nulled == pytest.approx(0.0, abs=1e-9)
    assert early > 0.1


def test_render_weights_tissue_signals_by_partial_volume() -> None:
    protocol = SpinEcho(field_strength_t=1.5, tr_ms=500, te_ms=15)
    params = tissue_parameters(1.5)
    half = np.full((2, 2, 2), 0.5, dtype=np.float32)
    fractions = {"gm": half, "wm": half, "csf": np.zeros_like(half), "fat": np.zeros_like(half)}

    image = render(protocol, fractions, params)

    signals = tissue_signals(protocol, params)
    np.testing.assert_allclose(image, 0.5 * (signals["gm"] + signals["wm"]), rtol=1e-6)
    assert image.dtype == np.float32


def test_protocol_dicts_select_their_sequence_and_are_validated() -> None:
    adapter = TypeAdapter(Protocol)
    spgr = {"sequence": "spoiled-gre", "field_strength_t": 3, "tr_ms": 20, "te_ms": 4}

    parsed = adapter.validate_python({**spgr, "flip_angle_deg": 25})

    assert isinstance(parsed, SpoiledGradientEcho) and parsed.field_strength_t == 3.0
    with pytest.raises(ValidationError, match="te_ms"):
        SpinEcho(field_strength_t=1.5, tr_ms=50, te_ms=80)
    with pytest.raises(ValidationError, match="ti_ms"):
        InversionRecoveryGradientEcho(
            field_strength_t=3.0, tr_ms=1000, ti_ms=1200, te_ms=3, flip_angle_deg=9
        )
    with pytest.raises(ValidationError, match="field_strength_t"):
        adapter.validate_python({**spgr, "field_strength_t": 7, "flip_angle_deg": 25})
