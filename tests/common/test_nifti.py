"""NIfTI loading, validation and atomic, orientation-preserving writing."""

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from common.errors import InputError
from common.nifti import load_mask, load_volume, nifti_stem, save_like, save_nifti

LPS_AFFINE = np.array([[-2.0, 0, 0, 90.0], [0, -2.0, 0, 120.0], [0, 0, 2.0, -70.0], [0, 0, 0, 1.0]])


def test_lps_input_round_trips_with_affine_orientation_and_values(head, write_nifti, tmp_path):
    source = write_nifti("lps.nii.gz", head, LPS_AFFINE)
    before = source.read_bytes()

    volume = load_volume(source)
    save_like(volume, volume.data * 2.0, tmp_path / "out.nii.gz")
    written = nib.load(str(tmp_path / "out.nii.gz"))

    assert volume.orientation == "LPS"
    assert nib.aff2axcodes(written.affine) == ("L", "P", "S")
    np.testing.assert_allclose(written.affine, LPS_AFFINE)
    assert written.get_data_dtype() == np.float32
    np.testing.assert_allclose(written.get_fdata(), head * 2.0, rtol=1e-6)
    assert source.read_bytes() == before  # the input was never touched


def test_canonical_data_is_ras(head, write_nifti):
    volume = load_volume(write_nifti("lps.nii", head, LPS_AFFINE))

    # LPS flips the first two axes relative to RAS.
    np.testing.assert_allclose(volume.data, head[::-1, ::-1, :])
    assert volume.spacing == (2.0, 2.0, 2.0)


def test_4d_with_one_volume_is_accepted(head, write_nifti):
    volume = load_volume(write_nifti("four.nii.gz", head[..., None]))

    assert volume.data.shape == head.shape


def test_save_like_refuses_to_overwrite_its_input(head, write_nifti):
    source = write_nifti("in.nii.gz", head)
    volume = load_volume(source)

    with pytest.raises(InputError, match="overwrite the input"):
        save_like(volume, volume.data, source)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("nan.nii.gz", "nan", "NaN or infinite"),
        ("flat.nii.gz", "constant", "constant"),
        ("tiny.nii.gz", "tiny", "implausible"),
        ("series.nii.gz", "4d", "not a 3D volume"),
        ("slice.nii.gz", "2d", "not a 3D volume"),
    ],
)
def test_bad_volumes_are_refused_naming_the_file(head, write_nifti, name, data, message):
    arrays = {
        "nan": np.where(head > 0.9, np.nan, head),
        "constant": np.full((16, 16, 16), 3.0, dtype=np.float32),
        "tiny": np.ones((4, 16, 16), dtype=np.float32),
        "4d": np.stack([head, head], axis=-1),
        "2d": head[:, :, 0],
    }
    path = write_nifti(name, arrays[data].astype(np.float32))

    with pytest.raises(InputError, match=message) as caught:
        load_volume(path)
    assert name in str(caught.value)


def test_unreadable_missing_and_misnamed_files(tmp_path):
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"not a nifti at all")
    text = tmp_path / "notes.txt"
    text.write_text("hello")

    with pytest.raises(InputError, match="cannot be read"):
        load_volume(corrupt)
    with pytest.raises(InputError, match="not found"):
        load_volume(tmp_path / "missing.nii")
    with pytest.raises(InputError, match="not a NIfTI"):
        load_volume(text)


def test_implausible_voxel_size_is_refused(head, write_nifti):
    path = write_nifti("huge.nii.gz", head, np.diag([50.0, 2.0, 2.0, 1.0]))

    with pytest.raises(InputError, match="voxel size"):
        load_volume(path)


def test_mask_must_share_the_grid(head, write_nifti):
    volume = load_volume(write_nifti("scan.nii.gz", head, LPS_AFFINE))
    good = write_nifti("good_mask.nii.gz", (head > 0.5).astype(np.uint8), LPS_AFFINE)
    shifted = write_nifti("bad_mask.nii.gz", (head > 0.5).astype(np.uint8))

    mask = load_mask(good, volume)

    np.testing.assert_array_equal(mask, (head > 0.5)[::-1, ::-1, :])
    with pytest.raises(InputError, match="does not match"):
        load_mask(shifted, volume)


def test_save_nifti_is_atomic_and_leaves_no_temporary_files(tmp_path: Path, head):
    target = tmp_path / "deep" / "out.nii.gz"

    save_nifti(target, head, np.diag([2.0, 2.0, 2.0, 1.0]))
    save_nifti(tmp_path / "deep" / "mask.nii.gz", head > 0.5, np.eye(4))

    assert sorted(os.listdir(target.parent)) == ["mask.nii.gz", "out.nii.gz"]
    assert nib.load(str(target)).get_data_dtype() == np.float32
    assert nib.load(str(tmp_path / "deep" / "mask.nii.gz")).get_data_dtype() == np.uint8


def test_failed_write_keeps_the_old_file(tmp_path: Path, head):
    target = tmp_path / "out.nii.gz"
    save_nifti(target, head, np.eye(4))
    before = target.read_bytes()

    with pytest.raises(ValueError):
        save_nifti(target, head, np.eye(3))  # a 3x3 affine is rejected by nibabel

    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.nii.gz"]


def test_nifti_stem():
    assert nifti_stem(Path("a/sub-01_T1w.nii.gz")) == "sub-01_T1w"
    assert nifti_stem(Path("scan.nii")) == "scan"
