from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from simulations.phantoms.preview import slice_indices, write_preview

Folder = tuple[Path, dict[str, Any]]


def test_preview_is_a_png_with_one_column_per_image(phantom_folder: Folder) -> None:
    out, manifest = phantom_folder
    (out / "preview.png").unlink()

    path = write_preview(out, manifest)

    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    columns = 1 + len(manifest["sites"])
    assert width > height and abs(width / columns - height / 2) < 0.35 * height
    assert not list(out.glob(".preview.*"))


def test_slices_go_through_the_brain() -> None:
    brain = np.zeros((20, 30, 40), dtype=bool)
    brain[5:15, 10:20, 10:30] = True

    axial, coronal = slice_indices(brain)

    assert axial == 21 and coronal == 14  # 60 % and 50 % of the extent
