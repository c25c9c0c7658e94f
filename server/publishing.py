"""The finished model: written as the run's artifact and sent to every site.

Signing arrives with the security issue; the artifact already carries a weights
digest that every site re-checks when it stores the model.
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from common.artifact import METADATA_FILE, ArtifactMetadata, Provenance, save_artifact
from common.configs.model import UNetConfig
from common.errors import HarmonizationError
from common.model import build_model
from common.profile import ReferenceProfile

logger = logging.getLogger(__name__)

MODEL_DIR = "model"


def write_model(
    run_dir: Path,
    state: dict[str, torch.Tensor],
    architecture: UNetConfig,
    profile: ReferenceProfile,
    provenance: Provenance,
    *,
    input_bias_correction: Literal["none", "n4"] = "none",
) -> ArtifactMetadata:
    model = build_model(architecture, seed=0)
    model.load_state_dict(state)
    return save_artifact(
        Path(run_dir) / MODEL_DIR,
        model,
        profile,
        provenance,
        input_bias_correction=input_bias_correction,
    )


def distribute_model(
    grid: Grid,
    node_ids: Sequence[int],
    run_dir: Path,
    state: dict[str, torch.Tensor],
    timeout: float,
) -> None:
    """Send the stored artifact to every site and require each to confirm it stored it."""
    metadata_json = (Path(run_dir) / MODEL_DIR / METADATA_FILE).read_text(encoding="utf-8")
    messages = [
        Message(
            content=RecordDict(
                {"arrays": ArrayRecord(state), "model": ConfigRecord({"metadata": metadata_json})}
            ),
            message_type="query.model",
            dst_node_id=node_id,
        )
        for node_id in node_ids
    ]
    replies = list(grid.send_and_receive(messages, timeout=timeout))
    failed = [r.metadata.src_node_id for r in replies if r.has_error()]
    if failed or len(replies) != len(node_ids):
        reasons = "; ".join(r.error.reason for r in replies if r.has_error())
        raise HarmonizationError(
            f"{len(node_ids) - len(replies) + len(failed)} site(s) did not store the model"
            + (f": {reasons}" if reasons else "")
        )
    logger.info("model sent to %d sites, each verified and stored it", len(node_ids))
