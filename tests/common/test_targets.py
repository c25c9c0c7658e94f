"""Target preparation and its on-disk cache of prepared reference cases."""

import os

import numpy as np
import pytest

from common.configs.profile import ProfileConfig
from common.targets import held_out_count, load_reference_cases
from tests.conftest import synthetic_head

CONFIG = ProfileConfig(bias_correction="none")


def test_prepared_cases_are_cached_and_reused(sites_root, tmp_path, monkeypatch):
    files = sorted((sites_root / "site-a" / "reference").iterdir())
    cache = tmp_path / "cache"

    first = load_reference_cases(files, CONFIG, cache_dir=cache)
    monkeypatch.setattr("common.targets.load_volume", lambda path: 1 / 0)  # must not be called
    second = load_reference_cases(files, CONFIG, cache_dir=cache)

    assert len(list(cache.iterdir())) == 1
    assert [c.name for c in second] == [c.name for c in first]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.mask, b.mask)
        assert a.spacing == b.spacing


def test_a_changed_file_or_setting_is_prepared_again(sites_root, tmp_path, write_nifti):
    folder = sites_root / "site-a" / "reference"
    files = sorted(folder.iterdir())
    cache = tmp_path / "cache"
    load_reference_cases(files, CONFIG, cache_dir=cache)

    write_nifti(files[0].name, synthetic_head(seed=42) * 3.0, folder=folder)
    os.utime(files[0], ns=(1, 1))
    changed = load_reference_cases(files, CONFIG, cache_dir=cache)
    load_reference_cases(files, ProfileConfig(bias_correction="n4"), cache_dir=cache)

    assert len(list(cache.iterdir())) == 3
    assert changed[0].data.max() > 2.0


@pytest.mark.parametrize(
    ("cases", "min_cases", "kept_back"), [(4, 3, 1), (3, 3, 0), (2, 1, 1), (1, 1, 0)]
)
def test_a_site_keeps_one_case_back_only_when_its_profile_can_spare_it(
    cases: int, min_cases: int, kept_back: int
) -> None:
    assert held_out_count(cases, min_cases) == kept_back
