import hashlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from common.errors import ConfigError, HarmonizationError
from common.sites import discover_sites
from simulations.phantoms.anatomy import load_template
from simulations.phantoms.generate import (
    PhantomRequest,
    count_outputs,
    generate_phantoms,
    make_subject,
    prepare_output,
    scan,
)
from simulations.phantoms.sites import build_consortium, default_consortium, default_sites

Folder = tuple[Path, dict[str, Any]]


def load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).get_fdata(dtype=np.float32))


def test_only_the_reference_site_contributes_to_the_reference_contrast(
    phantom_folder: Folder,
) -> None:
    out, manifest = phantom_folder

    contributors = [s.name for s in discover_sites(out / "sites") if s.config.reference_contributor]

    assert contributors == [manifest["reference_site"]]


def test_folder_has_the_design_layout(phantom_folder: Folder) -> None:
    out, manifest = phantom_folder

    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    test_subject = manifest["test"][0]["subject"]

    assert files == sorted(
        [
            "manifest.json",
            "preview.png",
            "sites/site-a/reference/sub-001_T1w.nii.gz",
            "sites/site-a/site.toml",
            "sites/site-b/reference/sub-002_T1w.nii.gz",
            "sites/site-b/site.toml",
            "sites/site-c/reference/sub-003_T1w.nii.gz",
            "sites/site-c/site.toml",
            *[
                f"test/{test_subject}/{name}.nii.gz"
                for name in (
                    "site-a_T1w",
                    "site-b_T1w",
                    "site-c_T1w",
                    "groundtruth_T1w",
                    "brain_mask",
                    "gm_mask",
                    "wm_mask",
                    "csf_mask",
                )
            ],
        ]
    )
    request = PhantomRequest(subjects=1, test_subjects=1)
    assert len(files) == count_outputs(request, default_consortium())
    assert manifest["reference_site"] == "site-a"
    assert manifest["generator_version"]


def test_manifest_subjects_are_disjoint(phantom_folder: Folder) -> None:
    _, manifest = phantom_folder

    groups = [
        {case["subject"] for case in site["reference_cases"]} for site in manifest["sites"].values()
    ]
    groups.append({entry["subject"] for entry in manifest["test"]})

    everyone = set().union(*groups)
    assert len(everyone) == sum(len(g) for g in groups)


def test_shapes_affines_and_masks_are_consistent(phantom_folder: Folder) -> None:
    out, manifest = phantom_folder
    subject = manifest["test"][0]

    images = [nib.load(str(p)) for p in sorted(out.rglob("*.nii.gz"))]
    masks = {name: load(out / path) for name, path in subject["masks"].items()}

    assert {img.shape for img in images} == {tuple(manifest["shape"])}
    for img in images:
        np.testing.assert_allclose(img.affine, manifest["affine"])
        assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
        assert img.header.get_zooms() == (2.0, 2.0, 2.0)
    for mask in masks.values():
        assert set(np.unique(mask)) <= {0.0, 1.0}
    union = (masks["gm"] + masks["wm"] + masks["csf"]).astype(int)
    np.testing.assert_array_equal(union, masks["brain"].astype(int))


def tissue_means(image: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, float]:
    return {t: float(image[masks[t] > 0.5].mean()) for t in ("wm", "gm", "csf")}


def test_t1w_ordering_at_every_site_and_in_the_ground_truth(phantom_folder: Folder) -> None:
    out, manifest = phantom_folder
    subject = manifest["test"][0]
    masks = {name: load(out / path) for name, path in subject["masks"].items()}

    files = {"groundtruth": subject["groundtruth"]}
    files.update({site: record["file"] for site, record in subject["scans"].items()})

    for name, path in files.items():
        means = tissue_means(load(out / path), masks)
        assert means["wm"] > means["gm"] > means["csf"], (name, means)


def test_t2w_ordering_at_every_site() -> None:
    template = load_template(2)
    subject = make_subject(template, seed=0, number=1)
    masks = subject.anatomy.masks()

    for index, site in enumerate(default_sites()):
        image, _, _ = scan(subject, site, index, "T2w", seed=0)
        means = tissue_means(image, masks)
        assert means["csf"] > means["gm"] > means["wm"], (site.name, means)


def test_background_noise_matches_the_configured_snr(phantom_folder: Folder) -> None:
    out, manifest = phantom_folder
    subject = manifest["test"][0]
    brain = load(out / subject["masks"]["brain"]) > 0.5
    wm_core = ndimage.binary_erosion(load(out / subject["masks"]["wm"]) > 0.5)
    background = ndimage.distance_transform_edt(~brain) > 12

    for site, record in subject["scans"].items():
        applied = record["applied_effects"]
        image = load(out / record["file"]) - applied["offset"]

        sigma = float(np.sqrt(np.mean(image[background] ** 2) / 2))  # Rayleigh in the air
        measured_snr = float(image[wm_core].mean()) / sigma

        assert measured_snr == pytest.approx(applied["snr"], rel=0.2), site


def wm_shading(image: np.ndarray, wm: np.ndarray) -> float:
    """Relative SD of a quadratic fitted to deep-WM intensities (pure WM has one value)."""
    points = np.argwhere(wm).astype(np.float64)
    unit = (points - points.mean(axis=0)) / points.std(axis=0)
    columns = [np.ones(len(unit)), *unit.T]
    columns += [unit[:, i] * unit[:, j] for i in range(3) for j in range(i, 3)]
    design = np.column_stack(columns)
    coefficients, *_ = np.linalg.lstsq(design, image[wm], rcond=None)
    fitted = design @ coefficients
    return float(fitted.std() / fitted.mean())


def test_bias_field_is_measurable_where_configured(phantom_folder: Folder) -> None:
    out, manifest = phantom_folder
    subject = manifest["test"][0]
    deep_wm = ndimage.binary_erosion(load(out / subject["masks"]["wm"]) > 0.5, iterations=2)

    truth = wm_shading(load(out / subject["groundtruth"]), deep_wm)
    shading = {}
    for site, record in subject["scans"].items():
        image = load(out / record["file"]) - record["applied_effects"]["offset"]
        shading[site] = wm_shading(image, deep_wm)

    strengths = {s: r["applied_effects"]["bias_strength"] for s, r in subject["scans"].items()}
    assert strengths["site-b"] > 0.1 and strengths["site-a"] < 0.1
    assert shading["site-b"] > 3 * truth
    assert shading["site-b"] > 2 * shading["site-a"]
    assert shading["site-a"] < 0.05


def through_plane_sharpness(image: np.ndarray, brain: np.ndarray) -> float:
    """Mid- over low-frequency power along z, divided by the same along x."""
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(brain))
    crop = image[box]

    def band_ratio(axis: int) -> float:
        power = np.abs(np.fft.rfft(crop, axis=axis)) ** 2
        profile = power.mean(axis=tuple(a for a in range(3) if a != axis))
        frequency = np.arange(profile.size) / (profile.size - 1)  # of Nyquist
        mid = profile[(frequency > 0.25) & (frequency < 0.5)].mean()
        return float(mid / profile[(frequency > 0.03) & (frequency < 0.15)].mean())

    return band_ratio(2) / band_ratio(0)


def test_anisotropic_blur_is_measurable_where_configured(phantom_folder: Folder) -> None:
    out, manifest = phantom_folder
    subject = manifest["test"][0]
    brain = load(out / subject["masks"]["brain"]) > 0.5

    truth = through_plane_sharpness(load(out / subject["groundtruth"]), brain)
    site_a = through_plane_sharpness(load(out / subject["scans"]["site-a"]["file"]), brain)
    site_b = through_plane_sharpness(load(out / subject["scans"]["site-b"]["file"]), brain)

    assert manifest["sites"]["site-b"]["effects"]["blur_fwhm_mm"][2] >= 4.0
    assert site_b < 0.75 * truth
    assert site_a == pytest.approx(truth, rel=0.1)


def test_different_seeds_give_different_anatomy() -> None:
    template = load_template(2)

    first = make_subject(template, seed=0, number=1)
    again = make_subject(template, seed=0, number=1)
    other = make_subject(template, seed=1, number=1)

    np.testing.assert_array_equal(first.anatomy.fractions["wm"], again.anatomy.fractions["wm"])
    a, b = first.anatomy.masks()["brain"], other.anatomy.masks()["brain"]
    dice = 2 * (a & b).sum() / (a.sum() + b.sum())
    assert 0.9 < dice < 0.995
    assert first.jitter != other.jitter


def hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    request = PhantomRequest(subjects=1, test_subjects=1, seed=11)
    consortium = build_consortium(2, seed=11)

    generate_phantoms(tmp_path / "first", request, consortium)
    generate_phantoms(tmp_path / "second", request, consortium)

    first, second = hashes(tmp_path / "first"), hashes(tmp_path / "second")
    assert len(first) == count_outputs(request, consortium)
    assert first == second


def test_non_empty_output_is_refused_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "sites" / "old").mkdir(parents=True)
    (out / "manifest.json").write_text("{}")
    (out / "notes.txt").write_text("mine")

    with pytest.raises(HarmonizationError, match="--force"):
        prepare_output(out, force=False)
    prepare_output(out, force=True)

    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(HarmonizationError, match="not a folder"):
        prepare_output(tmp_path / "file", force=True)


def test_modality_missing_from_a_site_is_refused(tmp_path: Path) -> None:
    site = default_sites()[0]
    only_t1 = site.model_copy(update={"protocols": {"T1w": site.protocols["T1w"]}})
    consortium = default_consortium().model_copy(update={"sites": (only_t1,)})

    with pytest.raises(ConfigError, match="site-a"):
        generate_phantoms(tmp_path, PhantomRequest(modality="T2w"), consortium)
