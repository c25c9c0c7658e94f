"""End to end without federation: train-local on tiny sites, then apply the model."""

import json

import nibabel as nib
import numpy as np
import pytest

from common.artifact import load_artifact
from common.configs.model import UNetConfig
from common.configs.settings import HarmonizerSettings
from common.configs.training import TrainingConfig
from common.errors import InputError
from common.sites import discover_sites
from fedharmonize.cli.main import main

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TINY = HarmonizerSettings(
    model=UNetConfig(base_channels=8, depth=2),
    training=TrainingConfig(epochs=3, batch_size=8, learning_rate=3e-3),
)


@pytest.fixture
def tiny_settings(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text(
        "[model]\nbase_channels = 8\ndepth = 2\n"
        "[training]\nepochs = 3\nbatch_size = 8\nlearning_rate = 0.003\n"
        '[profile]\nbias_correction = "none"\n'
    )
    return path


def test_train_local_then_apply_writes_a_valid_harmonized_scan(
    sites_root, tiny_settings, tmp_path, capsys
):
    run = tmp_path / "run"

    trained = main(
        [
            "train-local",
            "--sites-root",
            str(sites_root),
            "--out",
            str(run),
            "--config",
            str(tiny_settings),
            "--device",
            "cpu",
        ]
    )
    scan = sites_root / "site-b" / "reference" / "sub-00_T1w.nii.gz"
    applied = main(
        ["apply", "--model", str(run / "model"), str(scan), "--output", str(tmp_path / "out")]
    )

    assert trained == 0 and applied == 0
    log = json.loads((run / "training.json").read_text())
    assert log["epoch_losses"][-1] < log["epoch_losses"][0]
    artifact = load_artifact(run / "model")
    assert artifact.metadata.provenance.sites == ("site-a", "site-b")
    assert artifact.metadata.reference_profile.n_cases == 6
    output = nib.load(str(tmp_path / "out" / "sub-00_T1w.nii.gz"))
    data = output.get_fdata()
    assert output.shape == nib.load(str(scan)).shape
    assert np.isfinite(data).all() and data.max() > 0
    # harmonized output is in profile units: the bright core sits near 1, not at 730
    assert 0.5 < np.percentile(data[data > 0.1], 99) < 2.0
    assert "model:" in capsys.readouterr().out


def test_train_local_refuses_to_overwrite_and_unknown_reference_sites(
    sites_root, tiny_settings, tmp_path
):
    (tmp_path / "run" / "model").mkdir(parents=True)

    assert (
        main(["train-local", "--sites-root", str(sites_root), "--out", str(tmp_path / "run")]) == 2
    )
    with pytest.raises(InputError, match="--reference-site site-z"):
        from client.local_training import choose_reference_sites

        choose_reference_sites(discover_sites(sites_root), ["site-z"])


def test_training_is_replayable_on_cpu(sites_root, tmp_path):
    from client.local_training import train_local

    sites = discover_sites(sites_root, ["site-a"])
    first = train_local(sites, tmp_path / "a", TINY, device_name="cpu", progress=False)
    second = train_local(sites, tmp_path / "b", TINY, device_name="cpu", progress=False)

    assert first.result.step_losses == second.result.step_losses
    assert first.metadata.weights_sha256 == second.metadata.weights_sha256
    # one reference site trains on its own scans: no pseudo-targets, no weight to record
    assert first.metadata.provenance.pseudo_target_denoise_used is None


def test_a_comparison_model_trains_on_the_federations_cases_only(sites_root, tmp_path):
    from client.local_training import train_local

    settings = TINY.model_copy(
        update={"training": TrainingConfig(epochs=1, batch_size=8), "profile": TINY.profile}
    ).with_overrides("profile", min_cases=2, bias_correction="none")
    sites = discover_sites(sites_root)
    everything = train_local(sites, tmp_path / "all", settings, device_name="cpu", progress=False)
    same_cases = train_local(
        sites,
        tmp_path / "split",
        settings,
        device_name="cpu",
        progress=False,
        federated_split=True,
    )

    logs = {
        name: json.loads((tmp_path / name / "training.json").read_text())
        for name in ("all", "split")
    }
    assert logs["all"]["num_cases"] == 6
    assert logs["split"]["num_cases"] == 4  # each site's last case is the federation's held-out
    assert same_cases.num_slices < everything.num_slices
    # the profile still comes from every case, as the federation's does
    assert same_cases.metadata.reference_profile == everything.metadata.reference_profile


def test_pooled_training_denoises_by_the_reference_share_and_records_it(
    sites_root, write_nifti, tmp_path, monkeypatch
):
    import client.local_training as local_training
    from tests.conftest import synthetic_head

    for case in range(6):  # a third site with twice the cases: site-a holds 3 of 12
        write_nifti(
            f"sub-{case:02d}_T1w.nii.gz",
            synthetic_head(seed=40 + case),
            folder=sites_root / "site-c" / "reference",
        )
    weights: list[float] = []
    real = local_training.train_harmonizer

    def spy(model, slices, training, *args, **kwargs):
        weights.append(training.pseudo_target_denoise)
        return real(model, slices, training, *args, **kwargs)

    monkeypatch.setattr(local_training, "train_harmonizer", spy)
    settings = TINY.with_overrides("training", epochs=1).with_overrides(
        "profile", bias_correction="none"
    )

    outcome = local_training.train_local(
        discover_sites(sites_root),
        tmp_path / "pooled",
        settings,
        reference_sites=["site-a"],
        device_name="cpu",
        progress=False,
    )

    assert weights == [pytest.approx(0.02)]  # a quarter: halfway between a sixth and a third
    provenance = outcome.metadata.provenance
    assert (provenance.reference_training_cases, provenance.training_cases) == (3, 12)
    assert provenance.pseudo_target_denoise_used == pytest.approx(0.02)
    assert provenance.settings["training"]["pseudo_target_denoise"] == 0.04  # as configured


def test_a_3_slice_model_trains_locally_and_applies(sites_root, tmp_path):
    from client.local_training import train_local

    settings = TINY.model_copy(
        update={
            "model": UNetConfig(in_channels=3, base_channels=8, depth=2),
            "training": TrainingConfig(epochs=1, batch_size=8),
        }
    ).with_overrides("profile", bias_correction="none")
    sites = discover_sites(sites_root, ["site-a"])

    outcome = train_local(sites, tmp_path / "run", settings, device_name="cpu", progress=False)
    scan = sites_root / "site-a" / "reference" / "sub-00_T1w.nii.gz"
    applied = main(
        ["apply", "--model", str(tmp_path / "run" / "model"), str(scan), "--output", str(tmp_path)]
    )

    assert np.isfinite(outcome.result.step_losses).all()
    assert load_artifact(tmp_path / "run" / "model").model.config.in_channels == 3
    assert applied == 0
    assert nib.load(str(tmp_path / "sub-00_T1w.nii.gz")).shape == nib.load(str(scan)).shape
