"""Comparison models of a federated run: centralized and local-only, with its budget."""

import json
from pathlib import Path
from typing import Any

import pytest

from common.artifact import Provenance, load_artifact, save_artifact
from common.configs.model import UNetConfig
from common.configs.settings import HarmonizerSettings, parse_settings
from common.model import build_model
from common.profile import ReferenceProfile
from common.sites import read_site
from common.targets import load_reference_cases, site_profile
from simulations.comparisons import ComparisonPlan, train_comparisons

SETTINGS = """
[model]
base_channels = 8
depth = 2
[profile]
bias_correction = "none"
min_cases = 1
[training]
non_reference_share = 1.0
"""


def _federated_run(
    benchmark: Path, reference_site: str, run_dir: Path, settings: HarmonizerSettings
) -> ReferenceProfile:
    """A stand-in federated run: an untrained model with the reference profile, as RUN/model."""
    reference = read_site(benchmark / "sites" / reference_site)
    cases = load_reference_cases(reference.reference_files, settings.profile)
    profile = site_profile(cases, settings.profile, "T1w")
    provenance = Provenance(
        mode="federated",
        sites=("site-a", "site-b", "site-c"),
        reference_sites=("site-a",),
        rounds=1,
    )
    save_artifact(run_dir / "model", build_model(settings.model, 0), profile, provenance)
    return profile


@pytest.mark.slow
def test_centralized_and_local_models_get_the_federation_budget_and_profile(
    phantom_folder: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    benchmark, manifest = phantom_folder
    settings = parse_settings(SETTINGS, "test settings")
    profile = _federated_run(benchmark, manifest["reference_site"], tmp_path, settings)
    plan = ComparisonPlan(
        sites_root=benchmark / "sites",
        run_dir=tmp_path,
        settings=settings,
        epochs=1,
        local_only=(),
        device="cpu",
    )

    models = train_comparisons(plan)

    assert list(models) == ["centralized", "local site-a", "local site-b", "local site-c"]
    centralized = load_artifact(models["centralized"]).metadata
    assert centralized.provenance.mode == "centralized"
    assert centralized.provenance.reference_sites == ("site-a",)  # from site.toml
    for site in ("site-a", "site-b", "site-c"):
        local = load_artifact(models[f"local {site}"]).metadata
        assert local.provenance.mode == "local" and local.provenance.sites == (site,)
        assert local.reference_profile == profile  # the federation's, not its own
        log = json.loads((tmp_path / "compare" / f"local-{site}" / "training.json").read_text())
        assert len(log["epoch_losses"]) == 3  # the pooled budget: 1 epoch x 3 equal sites
    assert UNetConfig(base_channels=8, depth=2) == centralized.architecture


@pytest.mark.slow
def test_without_the_centralized_model_only_the_sites_asked_for_are_trained(
    phantom_folder: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    benchmark, manifest = phantom_folder
    settings = parse_settings(SETTINGS, "test settings")
    _federated_run(benchmark, manifest["reference_site"], tmp_path, settings)
    plan = ComparisonPlan(
        sites_root=benchmark / "sites",
        run_dir=tmp_path,
        settings=settings,
        epochs=1,
        local_only=("site-a",),
        device="cpu",
        centralized=False,
    )

    models = train_comparisons(plan)

    assert list(models) == ["local site-a"]
    assert sorted(p.name for p in (tmp_path / "compare").iterdir()) == ["local-site-a"]
    log = json.loads((tmp_path / "compare" / "local-site-a" / "training.json").read_text())
    assert len(log["epoch_losses"]) == 3  # the budget does not depend on the pooled model


def test_a_non_reference_share_shrinks_the_budget_the_comparisons_get(
    phantom_folder: tuple[Path, dict[str, Any]],
) -> None:
    from common.sites import discover_sites
    from simulations.comparisons import slice_pass_cases, training_cases

    benchmark, _ = phantom_folder
    sites = discover_sites(benchmark / "sites")
    settings = parse_settings(SETTINGS, "test settings")
    halved = settings.with_overrides("training", non_reference_share=0.5)
    cases = {site.name: training_cases(site, settings) for site in sites}

    full = slice_pass_cases(sites, settings, ("site-a",))
    shared = slice_pass_cases(sites, halved, ("site-a",))

    assert full == sum(cases.values())
    assert shared == cases["site-a"] + 0.5 * (cases["site-b"] + cases["site-c"])
