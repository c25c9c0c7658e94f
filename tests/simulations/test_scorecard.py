"""The scorecard on real phantom files: every method scored, site effect visible in raw scans."""

from pathlib import Path
from typing import Any

import pytest

from common.artifact import Provenance, save_artifact
from common.configs.model import UNetConfig
from common.configs.profile import ProfileConfig
from common.model import build_model
from common.sites import read_site
from common.targets import load_reference_cases, site_profile
from simulations.scorecard import format_table, score_benchmark

pytestmark = pytest.mark.slow


def test_scorecard_scores_raw_nyul_and_harmonized(
    phantom_folder: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, manifest = phantom_folder
    config = ProfileConfig(bias_correction="none", min_cases=1)
    reference = read_site(out / "sites" / manifest["reference_site"])
    profile = site_profile(load_reference_cases(reference.reference_files, config), config, "T1w")
    provenance = Provenance(mode="local", sites=("site-a",), reference_sites=("site-a",), rounds=0)
    save_artifact(
        tmp_path / "model", build_model(UNetConfig(base_channels=8), 0), profile, provenance
    )

    table = score_benchmark(tmp_path / "model", out, tmp_path / "harmonized")

    assert list(table) == ["raw", "landmark map (Nyul)", "harmonized"]
    raw, nyul = table["raw"], table["landmark map (Nyul)"]
    assert raw["jsd"] > nyul["jsd"] > 0  # landmark mapping aligns the histograms
    assert raw["cv_wm"] > 0.02  # the phantom sites differ
    # an untrained residual U-Net is the identity after the landmark map
    assert abs(table["harmonized"]["nmae"] - nyul["nmae"]) < 0.01
    assert len(list((tmp_path / "harmonized").rglob("*.nii.gz"))) == len(manifest["sites"])
    assert "| harmonized |" in format_table(table)
