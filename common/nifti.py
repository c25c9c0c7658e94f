"""NIfTI reading and writing with nibabel.

Volumes are worked on in canonical RAS+ orientation and written back in the
input's own orientation, affine and header, as float32. Every write goes to a
temporary file in the target folder first and is renamed into place, so a crash
never leaves half a file, and an input file is never opened for writing.
"""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

from common.errors import InputError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
MIN_EDGE_VOXELS = 8
MAX_EDGE_VOXELS = 2048
MAX_TOTAL_VOXELS = 2**28  # about 1 GB of float32; far beyond any clinical 3D scan
MAX_VOXEL_SIZE_MM = 20.0
RAS = axcodes2ornt(("R", "A", "S"))


@dataclass(frozen=True)
class Volume:
    """A scan in canonical RAS+ orientation, with what is needed to write results back.

    ``data`` is float32 with shape (X, Y, Z); axial slices are ``data[:, :, k]``.
    """

    path: Path
    data: np.ndarray
    spacing: tuple[float, float, float]
    source: nib.Nifti1Image

    @property
    def orientation(self) -> str:
        """Axis codes of the file as stored, e.g. 'LPS' or 'RAS'."""
        return "".join(nib.aff2axcodes(self.source.affine))


def is_nifti_path(path: Path) -> bool:
    return path.name.endswith(NIFTI_SUFFIXES)


def nifti_stem(path: Path) -> str:
    """File name without its NIfTI suffix: 'sub-01_T1w.nii.gz' -> 'sub-01_T1w'."""
    for suffix in sorted(NIFTI_SUFFIXES, key=len, reverse=True):
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def _open_image(path: Path) -> nib.Nifti1Image:
    if not is_nifti_path(path):
        raise InputError(f"{path}: not a NIfTI file (expected .nii or .nii.gz)")
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        image = nib.load(str(path))
    except Exception as error:  # nibabel raises many types for corrupt files
        raise InputError(f"{path}: cannot be read as NIfTI ({error})") from None
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise InputError(f"{path}: not a NIfTI-1 or NIfTI-2 image")
    return image


def _check_shape(path: Path, shape: tuple[int, ...]) -> None:
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InputError(
            f"{path}: shape {shape} is not a 3D volume "
            "(4D is accepted only with a single volume in the 4th dimension)"
        )
    if min(shape) < MIN_EDGE_VOXELS or max(shape) > MAX_EDGE_VOXELS:
        raise InputError(
            f"{path}: shape {shape} is implausible for a 3D MR scan "
            f"(each edge must be {MIN_EDGE_VOXELS}..{MAX_EDGE_VOXELS} voxels)"
        )
    if int(np.prod(shape)) > MAX_TOTAL_VOXELS:
        raise InputError(f"{path}: {int(np.prod(shape))} voxels is more than this tool handles")


def _to_canonical(image: nib.Nifti1Image) -> nib.Nifti1Image:
    if image.ndim == 4:
        image = image.slicer[..., 0]
    return nib.as_closest_canonical(image)


def load_volume(path: Path) -> Volume:
    """Read a 3D scan, validate it, and return it in canonical orientation as float32.

    Refuses (with :class:`InputError` naming the file): unreadable files, anything
    that is not 3D (4D only with one volume), implausible sizes or voxel sizes,
    complex data, and volumes that are non-finite or constant.
    """
    path = Path(path)
    image = _open_image(path)
    _check_shape(path, tuple(image.shape))
    if np.issubdtype(image.get_data_dtype(), np.complexfloating):
        raise InputError(f"{path}: complex-valued data; give a magnitude image")
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    if not all(0.0 < z <= MAX_VOXEL_SIZE_MM for z in zooms):
        raise InputError(
            f"{path}: voxel size {zooms} mm is implausible (each must be in (0, 20] mm)"
        )
    canonical = _to_canonical(image)
    data = np.asarray(canonical.get_fdata(dtype=np.float32))
    if not np.isfinite(data).all():
        count = int(np.size(data) - np.isfinite(data).sum())
        raise InputError(f"{path}: {count} voxels are NaN or infinite")
    if float(data.max()) == float(data.min()):
        raise InputError(f"{path}: the volume is constant ({float(data.min())}); nothing to do")
    spacing = tuple(float(z) for z in canonical.header.get_zooms()[:3])
    return Volume(path=path, data=data, spacing=spacing, source=image)


def load_mask(path: Path, like: Volume) -> np.ndarray:
    """Read a user-given mask on the same grid as ``like``, as a canonical boolean array."""
    path = Path(path)
    image = _open_image(path)
    _check_shape(path, tuple(image.shape))
    if tuple(image.shape[:3]) != tuple(like.source.shape[:3]) or not np.allclose(
        image.affine, like.source.affine, atol=1e-3
    ):
        raise InputError(
            f"{path}: mask grid {tuple(image.shape[:3])} does not match the scan "
            f"{like.path.name} {tuple(like.source.shape[:3])} (shape and affine must agree)"
        )
    mask = np.asarray(_to_canonical(image).get_fdata(dtype=np.float32)) > 0.5
    if not mask.any():
        raise InputError(f"{path}: the mask is empty")
    return mask


def _write_atomically(image: nib.Nifti1Image, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else ".nii"
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{nifti_stem(path)}.", suffix=suffix, dir=path.parent
    )
    os.close(handle)
    try:
        nib.save(image, temp_name)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    """Write ``data`` (already in the orientation ``affine`` describes) atomically.

    Float data is stored as float32; integer or boolean data (masks) as uint8.
    """
    if data.dtype == bool or np.issubdtype(data.dtype, np.integer):
        array = np.asarray(data, dtype=np.uint8)
    else:
        array = np.asarray(data, dtype=np.float32)
    image = nib.Nifti1Image(array, np.asarray(affine, dtype=np.float64))
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=1)
    _write_atomically(image, path)


def save_like(reference: Volume, canonical_data: np.ndarray, path: Path) -> None:
    """Write a canonical-orientation result in ``reference``'s orientation, affine and header."""
    path = Path(path)
    if path.resolve() == reference.path.resolve():
        raise InputError(f"{path}: refusing to overwrite the input scan")
    source = reference.source
    to_source = ornt_transform(RAS, io_orientation(source.affine))
    data = apply_orientation(np.asarray(canonical_data, dtype=np.float32), to_source)
    header = source.header.copy()
    header.set_data_dtype(np.float32)
    header.set_data_shape(data.shape)
    image = type(source)(data, source.affine, header=header)
    image.header.set_slope_inter(1.0, 0.0)
    _write_atomically(image, path)
