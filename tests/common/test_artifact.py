"""Model artifacts: safetensors + validated JSON, atomic replacement, tamper checks."""

import json
import os

import pytest
import torch

from common.artifact import (
    METADATA_FILE,
    WEIGHTS_FILE,
    Provenance,
    load_artifact,
    save_artifact,
)
from common.configs.model import UNetConfig
from common.errors import InputError
from common.model import build_model
from tests.conftest import tiny_profile

PROFILE = tiny_profile(n_cases=4)
PROVENANCE = Provenance(mode="centralized", sites=("a", "b"), reference_sites=("a",), rounds=0)


@pytest.fixture
def trained(tmp_path):
    model = build_model(UNetConfig(base_channels=8, depth=2), seed=1)
    with torch.no_grad():
        model.head.weight.add_(0.5)  # not the zero-initialised head
    save_artifact(tmp_path / "model", model, PROFILE, PROVENANCE)
    return model, tmp_path / "model"


def test_round_trip_restores_weights_profile_and_provenance(trained):
    model, folder = trained

    artifact = load_artifact(folder)

    assert sorted(os.listdir(folder)) == sorted([WEIGHTS_FILE, METADATA_FILE])
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(artifact.model.state_dict()[name], tensor)
    assert artifact.metadata.reference_profile == PROFILE
    assert artifact.metadata.provenance.sites == ("a", "b")
    assert artifact.metadata.architecture == model.config
    assert artifact.metadata.provenance.versions == {}  # nothing claimed that was not given


def test_saving_again_replaces_the_folder_without_leftovers(trained, tmp_path):
    model, folder = trained

    save_artifact(folder, model, PROFILE, PROVENANCE.model_copy(update={"rounds": 5}))

    assert load_artifact(folder).metadata.provenance.rounds == 5
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_tampered_weights_are_refused(trained):
    _, folder = trained
    data = bytearray((folder / WEIGHTS_FILE).read_bytes())
    data[-1] ^= 0xFF
    (folder / WEIGHTS_FILE).write_bytes(bytes(data))

    with pytest.raises(InputError, match="do not match the digest"):
        load_artifact(folder)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format_version=99), "format version 99 is not supported"),
        (lambda m: m.update(format="something-else"), "not a fedharmonize model"),
        (lambda m: m.update(extra_field=1), "unknown field 'extra_field'"),
        (lambda m: m["architecture"].update(base_channels=16), "do not fit the architecture"),
    ],
)
def test_invalid_metadata_is_refused_with_a_reason(trained, edit, message):
    _, folder = trained
    metadata = json.loads((folder / METADATA_FILE).read_text())
    edit(metadata)
    (folder / METADATA_FILE).write_text(json.dumps(metadata))

    with pytest.raises(InputError, match=message):
        load_artifact(folder)


def test_missing_folder_and_verifier_hook(trained, tmp_path):
    _, folder = trained
    calls = []

    def refuse(path):
        calls.append(path)
        raise InputError(f"{path}: signature does not verify")

    with pytest.raises(InputError, match="model folder not found"):
        load_artifact(tmp_path / "nowhere")
    with pytest.raises(InputError, match="signature does not verify"):
        load_artifact(folder, verifier=refuse)
    assert calls == [folder]
