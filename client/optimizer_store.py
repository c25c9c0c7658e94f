"""Each site's AdamW moments, kept on the site's own disk between federated rounds.

A site that restarts Adam every round takes its first steps at full size in
every direction, whatever the gradient there (Adam's bias correction), and
FedAvg then averages those steps into the global model. Keeping the moments
lets a site's steps follow what its loss really asks for. On the demo
phantoms this took the federated model from NMAE 0.116 to 0.110 (issue 6).

The file never leaves the site and is not part of any reply; it is named by
the Flower run, so a new run (or a resumed one) starts fresh.
"""

import logging
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch

from common.atomic import write_atomically

logger = logging.getLogger(__name__)

PREFIX = "optimizer-run-"


def optimizer_path(cache_dir: Path, run_id: int) -> Path:
    return Path(cache_dir) / f"{PREFIX}{run_id}.pt"


def _fits(state: dict, shapes: Sequence[torch.Size]) -> bool:
    moments = state.get("state", {})
    if len(moments) not in (0, len(shapes)):
        return False
    return all(
        tuple(moments[index]["exp_avg"].shape) == tuple(shape)
        for index, shape in enumerate(shapes)
        if index in moments
    )


def load_site_optimizer(path: Path, shapes: Sequence[torch.Size]) -> dict | None:
    """The kept state, or None (first round, or a file that does not fit this model)."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, weights_only=True)
        if isinstance(state, dict) and _fits(state, shapes):
            return state
        reason = "it does not match the model's parameters"
    except (
        OSError,
        RuntimeError,
        KeyError,
        TypeError,
        ValueError,
        pickle.UnpicklingError,
    ) as error:
        reason = str(error)
    logger.warning("%s: starting the optimizer afresh (%s)", path, reason)
    return None


def save_site_optimizer(path: Path, state: dict) -> None:
    """Write atomically, readable by the site only; remove earlier runs' files."""
    write_atomically(path, lambda temporary: torch.save(state, temporary), mode=0o600)
    for older in path.parent.glob(f"{PREFIX}*.pt"):
        if older != path:
            older.unlink(missing_ok=True)
