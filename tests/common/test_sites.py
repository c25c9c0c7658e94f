"""Site folder discovery and site.toml validation."""

import pytest

from common.errors import ConfigError, InputError
from common.sites import discover_sites, read_site


def test_discovers_every_site_sorted(sites_root):
    sites = discover_sites(sites_root)

    assert [s.name for s in sites] == ["site-a", "site-b"]
    assert all(len(s.reference_files) == 3 for s in sites)
    assert sites[0].config.reference_contributor is True


def test_selects_named_sites_and_refuses_unknown_ones(sites_root):
    assert [s.name for s in discover_sites(sites_root, ["site-b"])] == ["site-b"]
    with pytest.raises(InputError, match="no site named site-z .*available: site-a, site-b"):
        discover_sites(sites_root, ["site-z"])


def test_site_toml_is_validated_with_the_field_named(sites_root):
    (sites_root / "site-a" / "site.toml").write_text('reference_contributor = "perhaps"\n')
    (sites_root / "site-b" / "site.toml").write_text('modality = "T1w"\nfavourite_colour = 3\n')

    with pytest.raises(ConfigError, match="site.toml: field 'reference_contributor'"):
        read_site(sites_root / "site-a")
    with pytest.raises(ConfigError, match="unknown field 'favourite_colour'"):
        read_site(sites_root / "site-b")


def test_site_toml_sets_contribution(sites_root):
    (sites_root / "site-b" / "site.toml").write_text("reference_contributor = false\n")

    assert read_site(sites_root / "site-b").config.reference_contributor is False


def test_folder_without_scans_or_reference_dir(tmp_path):
    (tmp_path / "empty" / "reference").mkdir(parents=True)
    (tmp_path / "bare").mkdir()

    with pytest.raises(InputError, match="no .nii or .nii.gz reference cases"):
        read_site(tmp_path / "empty")
    with pytest.raises(InputError, match="no 'reference/' folder"):
        read_site(tmp_path / "bare")
    with pytest.raises(InputError, match="no site folders"):
        discover_sites(tmp_path / "bare")
