from pathlib import Path

import pytest

from common.errors import ConfigError
from simulations.phantoms.sites import (
    EXAMPLE_TOML,
    MAX_SITES,
    build_consortium,
    default_consortium,
    load_consortium,
)


def test_default_sites_differ_in_t1w_protocol_and_effects() -> None:
    consortium = default_consortium()

    sequences = {site.protocols["T1w"].sequence for site in consortium.sites}
    snrs = {site.effects.snr for site in consortium.sites}

    assert [site.name for site in consortium.sites] == ["site-a", "site-b", "site-c"]
    assert consortium.reference_site == "site-a"
    assert sequences == {"ir-gre", "spoiled-gre", "spin-echo"}
    assert len(snrs) == 3
    reference = consortium.sites[0]
    assert reference.protocols["T1w"] == consortium.reference_protocols["T1w"]
    assert reference.effects.snr == max(snrs)


def test_more_sites_are_drawn_reproducibly_from_the_seed() -> None:
    five = build_consortium(5, seed=1)
    again = build_consortium(5, seed=1)
    other = build_consortium(5, seed=2)

    assert [s.name for s in five.sites] == ["site-a", "site-b", "site-c", "site-d", "site-e"]
    assert five == again
    assert five.sites[3] != other.sites[3]
    assert five.sites[:3] == default_consortium().sites
    assert [s.name for s in build_consortium(2, seed=0).sites] == ["site-a", "site-b"]


@pytest.mark.parametrize("count", [0, MAX_SITES + 1])
def test_site_count_out_of_range_is_refused(count: int) -> None:
    with pytest.raises(ConfigError, match=f"--sites {count}"):
        build_consortium(count, seed=0)


def test_example_toml_loads(tmp_path: Path) -> None:
    path = tmp_path / "consortium.toml"
    path.write_text(EXAMPLE_TOML)

    consortium = load_consortium(path)

    assert consortium.reference_site == "uni-hospital"
    clinic = consortium.sites[1]
    assert clinic.protocols["T1w"].sequence == "spin-echo"
    assert clinic.effects.blur_fwhm_mm == (2.0, 2.0, 5.0)
    assert consortium.reference_protocols["T2w"].sequence == "spin-echo"  # default kept


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("snr = 15", "snr = -3", "sites.1.effects.snr"),
        ("tr_ms = 500", "tr_ms = 10", "te_ms"),
        ("bias_strength = 0.2", "bias_strenght = 0.2", "bias_strenght"),
        ('sequence = "spin-echo"', 'sequence = "flair"', "sequence"),
        ('reference_site = "uni-hospital"', 'reference_site = "nowhere"', "nowhere"),
    ],
)
def test_bad_toml_value_fails_in_one_line_naming_it(
    tmp_path: Path, old: str, new: str, named: str
) -> None:
    assert old in EXAMPLE_TOML
    path = tmp_path / "bad.toml"
    path.write_text(EXAMPLE_TOML.replace(old, new, 1))

    with pytest.raises(ConfigError) as caught:
        load_consortium(path)

    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and named in message


def test_unreadable_toml_is_a_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[[sites]\nname = 'x'\n")

    with pytest.raises(ConfigError, match="not valid TOML"):
        load_consortium(broken)
    with pytest.raises(ConfigError, match="not found"):
        load_consortium(tmp_path / "missing.toml")


def test_missing_modality_is_named(tmp_path: Path) -> None:
    path = tmp_path / "consortium.toml"
    path.write_text(EXAMPLE_TOML)
    consortium = load_consortium(path)

    with pytest.raises(ConfigError, match="without a T2w protocol: uni-hospital, city-clinic"):
        consortium.check_modality("T2w", str(path))
