"""Applying a model to a site's scans: naming, safety, skipping bad inputs."""

import nibabel as nib
import numpy as np
import pytest
import torch

from client.apply import apply_model, plan_jobs
from common.artifact import Provenance, load_artifact, save_artifact
from common.configs.model import UNetConfig
from common.errors import InputError
from common.model import build_model
from fedharmonize.cli.main import main
from tests.conftest import tiny_profile

LPS = np.array([[-2.0, 0, 0, 10], [0, -2.0, 0, 20], [0, 0, 2.0, 30], [0, 0, 0, 1]])


@pytest.fixture
def identity_artifact(tmp_path):
    """An untrained residual U-Net: its output is the normalized input."""
    profile = tiny_profile()
    provenance = Provenance(mode="local", sites=("a",), reference_sites=("a",), rounds=0)
    save_artifact(
        tmp_path / "model", build_model(UNetConfig(base_channels=8), 0), profile, provenance
    )
    return load_artifact(tmp_path / "model")


def test_folder_inputs_mirror_their_layout(tmp_path, write_nifti, head):
    scans = tmp_path / "scans"
    write_nifti("a.nii.gz", head, folder=scans)
    write_nifti("b.nii", head, folder=scans / "nested")
    (scans / "readme.txt").write_text("ignored")

    jobs = plan_jobs([scans], tmp_path / "out")

    assert [j.destination.relative_to(tmp_path / "out").as_posix() for j in jobs] == [
        "a.nii.gz",
        "nested/b.nii",
    ]


def test_plans_that_would_lose_data_are_refused(tmp_path, write_nifti, head):
    scan = write_nifti("a.nii.gz", head, folder=tmp_path / "one")
    twin = write_nifti("a.nii.gz", head, folder=tmp_path / "two")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.nii.gz").write_bytes(b"previous result")

    with pytest.raises(InputError, match="would overwrite an input"):
        plan_jobs([scan], tmp_path / "one")
    with pytest.raises(InputError, match="would write the same output"):
        plan_jobs([scan, twin], tmp_path / "fresh")
    with pytest.raises(InputError, match="already exists"):
        plan_jobs([scan], tmp_path / "out")
    assert len(plan_jobs([scan], tmp_path / "out", overwrite=True)) == 1
    with pytest.raises(InputError, match="no such file"):
        plan_jobs([tmp_path / "missing.nii.gz"], tmp_path / "out")


def test_outputs_keep_geometry_and_bad_inputs_are_skipped(
    tmp_path, write_nifti, head, identity_artifact
):
    good = write_nifti("good.nii.gz", head * 500, LPS, folder=tmp_path / "in")
    bad = write_nifti("flat.nii.gz", np.ones((16, 16, 16), np.float32), folder=tmp_path / "in")
    before = good.read_bytes()
    jobs = plan_jobs([good, bad], tmp_path / "out")

    summary = apply_model(identity_artifact, jobs, device=torch.device("cpu"), progress=False)

    assert summary.written == [tmp_path / "out" / "good.nii.gz"]
    assert [str(source) for source, _ in summary.failed] == [str(bad)]
    assert "flat.nii.gz" in summary.failed[0][1] and "constant" in summary.failed[0][1]
    written = nib.load(str(tmp_path / "out" / "good.nii.gz"))
    np.testing.assert_allclose(written.affine, LPS)
    assert written.shape == head.shape
    # identity network: output is the input landmark-mapped onto the profile, a monotone
    # map that puts the foreground's 99th percentile at the profile's top landmark (1.0)
    out = written.get_fdata()
    order = np.argsort(head.ravel(), kind="stable")
    assert (np.diff(out.ravel()[order]) >= -1e-6).all()
    assert abs(np.percentile(out[head > 0.2], 99) - 1.0) < 0.05
    assert good.read_bytes() == before
    assert not (tmp_path / "out" / "flat.nii.gz").exists()


def test_user_mask_is_used_and_checked(tmp_path, write_nifti, head, identity_artifact):
    scan = write_nifti("scan.nii.gz", head, folder=tmp_path / "in")
    wrong_grid = write_nifti("mask.nii.gz", np.ones((10, 10, 10), np.uint8), folder=tmp_path)
    jobs = plan_jobs([scan], tmp_path / "out")

    summary = apply_model(
        identity_artifact, jobs, mask_path=wrong_grid, device=torch.device("cpu"), progress=False
    )

    assert summary.written == []
    assert "does not match" in summary.failed[0][1]


@pytest.mark.slow
def test_a_model_trained_on_bias_corrected_targets_corrects_its_inputs(tmp_path, write_nifti, head):
    provenance = Provenance(mode="local", sites=("a",), reference_sites=("a",), rounds=0)
    model = build_model(UNetConfig(base_channels=8), 0)
    for correction in ("none", "n4"):
        save_artifact(
            tmp_path / correction,
            model,
            tiny_profile(),
            provenance,
            input_bias_correction=correction,
        )
    ramp = np.linspace(0.6, 1.4, head.shape[0], dtype=np.float32)[:, None, None]
    scan = write_nifti("shaded.nii.gz", head * ramp * 300, folder=tmp_path / "in")
    white_matter = head > 0.9
    left, right = white_matter.copy(), white_matter.copy()
    left[head.shape[0] // 2 :], right[: head.shape[0] // 2] = False, False

    shading = {}
    for correction in ("none", "n4"):
        artifact = load_artifact(tmp_path / correction)
        jobs = plan_jobs([scan], tmp_path / f"out-{correction}")
        apply_model(artifact, jobs, device=torch.device("cpu"), progress=False)
        out = nib.load(str(tmp_path / f"out-{correction}" / "shaded.nii.gz")).get_fdata()
        shading[correction] = out[right].mean() / out[left].mean()

    assert artifact.metadata.input_bias_correction == "n4"
    assert shading["none"] > 1.05  # the ramp survives a global landmark map
    assert abs(shading["n4"] - 1.0) < 0.25 * (shading["none"] - 1.0)


def test_scale_input_mapping_keeps_a_reference_scans_contrast(
    tmp_path, write_nifti, head, identity_artifact
):
    scan = write_nifti("ref.nii.gz", head * 500, LPS, folder=tmp_path / "in")
    model = tmp_path / "model"  # the identity artifact's folder
    argv = ["apply", "--model", str(model), str(scan), "--output"]

    assert main([*argv, str(tmp_path / "scaled"), "--input-mapping", "scale"]) == 0
    assert main([*argv, str(tmp_path / "mapped")]) == 0

    foreground = head > 0.2
    scaled = nib.load(str(tmp_path / "scaled" / "ref.nii.gz")).get_fdata()[foreground]
    mapped = nib.load(str(tmp_path / "mapped" / "ref.nii.gz")).get_fdata()[foreground]
    ratio = scaled / (head[foreground] * 500)
    np.testing.assert_allclose(ratio, np.median(ratio), rtol=1e-3)  # one factor for every tissue
    assert np.percentile(scaled, 99) == pytest.approx(1.0, rel=0.02)  # the profile's top
    bent = mapped / (head[foreground] * 500)
    assert bent.max() / bent.min() > 1.05  # the landmark map onto tiny_profile moves tissues


def test_apply_refuses_an_unknown_input_mapping(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["apply", "--model", str(tmp_path), "x.nii.gz", "--output", "o", "--input-mapping", "z"]
        )

    assert exit_info.value.code == 2
    assert "invalid choice: 'z'" in capsys.readouterr().err
