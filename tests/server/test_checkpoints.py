"""Checkpoint chain: written per round, verified link by link, tampering detected."""

import json

import pytest
import torch

from common.errors import InputError
from server.checkpoints import load_checkpoint_state, verify_chain, write_checkpoint
from tests.conftest import tiny_profile

PROFILE = tiny_profile()


def write_rounds(run_dir, count):
    for r in range(1, count + 1):
        write_checkpoint(run_dir, r, {"w": torch.full((3,), float(r))}, PROFILE, "fedavg")


def test_chain_verifies_and_restores_the_last_round(tmp_path):
    write_rounds(tmp_path, 3)

    chain = verify_chain(tmp_path)

    assert [c.round for c in chain] == [1, 2, 3]
    assert chain[-1].profile == PROFILE
    torch.testing.assert_close(load_checkpoint_state(chain[-1])["w"], torch.full((3,), 3.0))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        f"round-00{r}.{ext}" for r in (1, 2, 3) for ext in ("json", "safetensors")
    ]


def test_empty_run_has_an_empty_chain(tmp_path):
    assert verify_chain(tmp_path) == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("weights", "does not match its record"),
        ("link", "does not link"),
        ("gap", "where 2 was expected"),
    ],
)
def test_broken_chains_are_refused(tmp_path, damage, message):
    write_rounds(tmp_path, 3)
    folder = tmp_path / "checkpoints"
    if damage == "weights":
        (folder / "round-002.safetensors").write_bytes(b"tampered")
    elif damage == "link":
        record = json.loads((folder / "round-001.json").read_text())
        record["strategy"] = "fedprox"
        (folder / "round-001.json").write_text(json.dumps(record))
    else:
        (folder / "round-002.json").unlink()

    with pytest.raises(InputError, match=message):
        verify_chain(tmp_path)
