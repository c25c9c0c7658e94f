"""Evaluation on real phantom files: every method scored, site effect visible in raw scans."""

from pathlib import Path
from typing import Any

import pytest

from common.artifact import Provenance, save_artifact
from common.configs.model import UNetConfig
from common.configs.profile import ProfileConfig
from common.errors import InputError
from common.model import build_model
from common.sites import read_site
from common.targets import load_reference_cases, site_profile
from simulations.evaluation import evaluate_benchmark, format_table, model_loaders, scaled_name
from simulations.metric_catalogue import METRICS

pytestmark = pytest.mark.slow


def test_models_and_baselines_are_scored_side_by_side(
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

    scores = evaluate_benchmark(out, {"untrained": tmp_path / "model"}, tmp_path / "report")
    table = scores.table

    assert list(table) == [
        "raw",
        "untrained",
        "z-score",
        "WhiteStripe",
        "Nyul",
        "N4 + Nyul",
        "N4 + Nyul + smoothing (0.5 vox)",
    ]
    raw, nyul = table["raw"], table["Nyul"]
    assert set(raw) <= set(METRICS)  # every score is explained in the report and --help
    assert {"haarpsi", "ssim", "psnr"} <= set(raw)
    assert raw["jsd"] > nyul["jsd"] > 0  # landmark mapping aligns the histograms
    assert raw["cv_wm"] > 0.02  # the phantom sites differ
    assert 0 < raw["slice_jitter"] < 0.05 and raw["noise_hf"] > 0
    for affine in ("z-score", "WhiteStripe"):  # only rescale: scale-free scores equal raw's
        assert table[affine]["slice_jitter"] == pytest.approx(raw["slice_jitter"], rel=1e-3)
        assert table[affine]["noise_hf"] == pytest.approx(raw["noise_hf"], rel=1e-3)
    # an untrained residual U-Net is the identity after the landmark map
    assert abs(table["untrained"]["nmae"] - nyul["nmae"]) < 0.02
    harmonized = list((tmp_path / "report" / "untrained").rglob("*.nii.gz"))
    assert len(harmonized) == len(manifest["sites"])
    sites = sorted(manifest["sites"])
    for method, row in table.items():  # per-site figures are the same numbers, split by site
        per_site = scores.per_site[method]
        assert sorted(per_site) == sites
        for key in ("nmae", "gradient_corr"):
            mean_of_sites = sum(per_site[site][key] for site in sites) / len(sites)
            assert mean_of_sites == pytest.approx(row[key], rel=1e-9)
    raw_edges = {site: scores.per_site["raw"][site]["gradient_corr"] for site in sites}
    assert max(raw_edges, key=raw_edges.get) == manifest["reference_site"]  # labels not shuffled
    text = format_table(table, chance=1 / 3)
    assert "| untrained |" in text and text.count("**") == 2 * len(raw)


def test_scaled_reference_rows_change_only_the_reference_sites_scans(
    phantom_folder: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, manifest = phantom_folder
    config = ProfileConfig(bias_correction="none", min_cases=1)
    reference = manifest["reference_site"]
    profile = site_profile(
        load_reference_cases(read_site(out / "sites" / reference).reference_files, config),
        config,
        "T1w",
    )
    provenance = Provenance(
        mode="local", sites=(reference,), reference_sites=(reference,), rounds=0
    )
    save_artifact(
        tmp_path / "model", build_model(UNetConfig(base_channels=8), 0), profile, provenance
    )

    scores = evaluate_benchmark(
        out,
        {"untrained": tmp_path / "model"},
        tmp_path / "report",
        baselines=False,
        scale_reference_sites=True,
    )

    scaled = scaled_name("untrained")
    assert list(scores.table) == ["raw", "untrained", scaled]
    others = sorted(set(manifest["sites"]) - {reference})
    for site in others:  # the same files: landmark-mapped once, shared by both rows
        assert scores.per_site[scaled][site] == scores.per_site["untrained"][site]
    written = sorted(p.name for p in (tmp_path / "report" / "untrained-scaled").rglob("*.nii.gz"))
    assert written == [f"{reference}_T1w.nii.gz"]
    # an untrained residual U-Net is the identity, so a scaled scan scores as the raw one
    # (both figures ignore one brightness scale), while the landmark map bends it
    raw_a, mapped_a = scores.per_site["raw"][reference], scores.per_site["untrained"][reference]
    scaled_a = scores.per_site[scaled][reference]
    for key in ("nmae", "gradient_corr"):
        assert scaled_a[key] == pytest.approx(raw_a[key], rel=1e-3)
    assert abs(mapped_a["nmae"] - raw_a["nmae"]) > 1e-3


def test_a_model_named_like_a_scaled_row_is_refused_before_any_work(tmp_path: Path) -> None:
    models = {"fed": tmp_path / "a", scaled_name("fed"): tmp_path / "b"}

    with pytest.raises(InputError, match="taken by the scaled row"):
        model_loaders(models, tmp_path / "report", scale_reference_sites=True)
    assert not (tmp_path / "report").exists()
