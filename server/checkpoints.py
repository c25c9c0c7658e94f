"""One checkpoint per round, chained, so a crashed run resumes where it stopped.

``RUN/checkpoints/round-NNN.safetensors`` holds the global weights after round
NNN; ``round-NNN.json`` holds the round, the weights' digest, the consortium
profile and the digest of the previous checkpoint's JSON. Resume verifies the
whole chain before trusting the last link.
"""

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from common.artifact import sha256_of
from common.errors import InputError
from common.profile import ReferenceProfile

CHECKPOINT_DIR = "checkpoints"


@dataclass(frozen=True)
class Checkpoint:
    round: int
    weights: Path
    record: Path
    profile: ReferenceProfile


def _atomic_write_bytes(path: Path, write: Callable[[Path], object]) -> None:
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temp))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def checkpoint_paths(run_dir: Path, round_number: int) -> tuple[Path, Path]:
    folder = Path(run_dir) / CHECKPOINT_DIR
    return (
        folder / f"round-{round_number:03d}.safetensors",
        folder / f"round-{round_number:03d}.json",
    )


def write_checkpoint(
    run_dir: Path,
    round_number: int,
    state: dict[str, torch.Tensor],
    profile: ReferenceProfile,
    strategy: str,
) -> Checkpoint:
    """Write round ``round_number``'s weights and record atomically, linked to the last one."""
    weights, record = checkpoint_paths(run_dir, round_number)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    _atomic_write_bytes(weights, lambda p: save_file(tensors, str(p), metadata={"format": "pt"}))
    previous = checkpoint_paths(run_dir, round_number - 1)[1]
    entry = {
        "round": round_number,
        "strategy": strategy,
        "weights_sha256": sha256_of(weights),
        "previous_sha256": sha256_of(previous) if round_number > 1 else None,
        "profile": json.loads(profile.to_json()),
    }
    text = json.dumps(entry, indent=2, sort_keys=True)
    _atomic_write_bytes(record, lambda p: p.write_text(text, encoding="utf-8"))
    return Checkpoint(round_number, weights, record, profile)


def verify_chain(run_dir: Path) -> list[Checkpoint]:
    """Every checkpoint from round 1 on, checked link by link; raises on a broken chain."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    records = sorted(folder.glob("round-*.json"))
    chain: list[Checkpoint] = []
    for expected_round, record in enumerate(records, start=1):
        entry = json.loads(record.read_text(encoding="utf-8"))
        weights = record.with_suffix(".safetensors")
        if entry["round"] != expected_round:
            raise InputError(
                f"{record}: round {entry['round']} where {expected_round} was expected"
            )
        if not weights.exists() or sha256_of(weights) != entry["weights_sha256"]:
            raise InputError(f"{weights}: missing or does not match its record")
        if expected_round > 1 and entry["previous_sha256"] != sha256_of(chain[-1].record):
            raise InputError(
                f"{record}: does not link to the checkpoint of round {expected_round - 1}"
            )
        profile = ReferenceProfile.model_validate(entry["profile"])
        chain.append(Checkpoint(expected_round, weights, record, profile))
    return chain


def load_checkpoint_state(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint.weights))
