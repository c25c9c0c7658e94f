"""preview.png: one test subject at every site beside its ground truth.

Each panel is windowed on its own brain intensities (0 to the 99.5th
percentile), because gains are arbitrary; what differs between panels is then
contrast, shading, sharpness and noise, while the anatomy stays the same.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from common.atomic import write_atomically

MAX_COLUMNS = 6
PANEL_INCHES = 2.8
WINDOW_PERCENTILE = 99.5


def _load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).get_fdata(dtype=np.float32))


def slice_indices(brain: np.ndarray) -> tuple[int, int]:
    """Axial level 60 % up the brain (through the lateral ventricles); coronal at mid-brain."""
    levels = np.flatnonzero(brain.any(axis=(0, 1)))
    rows = np.flatnonzero(brain.any(axis=(0, 2)))
    axial = int(levels[0] + 0.6 * (levels[-1] - levels[0]))
    coronal = int(rows[0] + 0.5 * (rows[-1] - rows[0]))
    return axial, coronal


def write_preview(out: Path, manifest: Mapping[str, Any]) -> Path:
    """Render the first test subject of ``manifest`` into ``out/preview.png``.

    Each column is one image (ground truth first, then every site); an axial row
    shows contrast, shading and noise, a coronal row below shows through-plane blur.
    """
    out = Path(out)
    subject = manifest["test"][0]
    brain = _load(out / subject["masks"]["brain"]) > 0.5
    axial, coronal = slice_indices(brain)
    panels = [
        ("ground truth", manifest["reference_protocol_label"], _load(out / subject["groundtruth"]))
    ]
    for name, record in subject["scans"].items():
        title = f"{name} (reference site)" if name == manifest["reference_site"] else name
        panels.append(
            (title, manifest["sites"][name]["protocol_label"], _load(out / record["file"]))
        )

    columns = min(len(panels), MAX_COLUMNS)
    groups = -(-len(panels) // columns)
    figure = Figure(figsize=(columns * PANEL_INCHES, groups * 2 * PANEL_INCHES + 0.4), dpi=110)
    FigureCanvasAgg(figure)
    for index, (title, label, volume) in enumerate(panels):
        group, column = divmod(index, columns)
        top = float(np.percentile(volume[brain], WINDOW_PERCENTILE)) or 1.0
        views = (volume[:, :, axial], volume[:, coronal, :])
        for row, view in enumerate(views):
            position = (2 * group + row) * columns + column + 1
            axes = figure.add_subplot(2 * groups, columns, position)
            axes.imshow(view.T, origin="lower", cmap="gray", vmin=0.0, vmax=top)
            axes.set_axis_off()
            if row == 0:
                axes.set_title(f"{title}\n{label}", fontsize=8)
    figure.suptitle(
        f"{subject['subject']}, {manifest['modality']}: axial z={axial} (top), "
        f"coronal y={coronal} (bottom); each image windowed on its own brain",
        fontsize=9,
    )
    figure.tight_layout()
    return write_atomically(
        out / "preview.png",
        lambda temporary: figure.savefig(temporary, format="png", metadata={"Software": None}),
    )
