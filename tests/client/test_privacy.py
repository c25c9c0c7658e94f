"""The allow-list on outgoing replies, and the ledger entry each reply leaves."""

import json

import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from client.privacy import PrivacyViolationError, append_ledger, check_reply, describe_reply
from tests.conftest import tiny_profile

SHAPES = {"conv.weight": (4, 1, 3, 3), "conv.bias": (4,)}
PROFILE = tiny_profile()


def model_arrays(**extra):
    arrays = {name: torch.zeros(shape) for name, shape in SHAPES.items()}
    return ArrayRecord({**arrays, **extra})


def test_weights_metrics_and_profile_pass():
    content = RecordDict(
        {
            "arrays": model_arrays(),
            "metrics": MetricRecord({"train-loss": 0.1, "num-examples": 100}),
            "profile": ConfigRecord({"json": PROFILE.to_json()}),
            "site": ConfigRecord({"site-name": "site-a", "contributes": True}),
        }
    )

    check_reply(content, SHAPES, min_cases=3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (RecordDict({"arrays": model_arrays(slice=torch.zeros(91, 109))}), "names and shapes"),
        (RecordDict({"images": ArrayRecord({"x": torch.zeros(4)})}), "'images'"),
        (RecordDict({"metrics": MetricRecord({"per-case": [0.1, 0.2]})}), "single number"),
        (RecordDict({"config": ConfigRecord({"file": "sub-01_T1w.nii.gz"})}), "config record"),
        (RecordDict({"site": ConfigRecord({"site-name": "a", "patient": "x"})}), "config record"),
    ],
)
def test_anything_else_is_refused(content, message):
    with pytest.raises(PrivacyViolationError, match=message):
        check_reply(content, SHAPES, min_cases=3)


def test_a_profile_from_too_few_cases_is_refused():
    few = PROFILE.model_copy(update={"n_cases": 2})
    content = RecordDict({"profile": ConfigRecord({"json": few.to_json()})})

    with pytest.raises(PrivacyViolationError, match="2 cases"):
        check_reply(content, SHAPES, min_cases=3)


def test_ledger_line_lists_keys_shapes_and_bytes(tmp_path):
    content = RecordDict(
        {"arrays": model_arrays(), "metrics": MetricRecord({"train-loss": 0.25, "num-examples": 8})}
    )

    records, size = describe_reply(content)
    append_ledger(tmp_path / "ledger" / "a.jsonl", {"round": 1, "records": records, "bytes": size})
    [line] = (tmp_path / "ledger" / "a.jsonl").read_text().splitlines()
    entry = json.loads(line)

    assert entry["records"]["arrays"]["shapes"] == {"conv.weight": [4, 1, 3, 3], "conv.bias": [4]}
    assert entry["records"]["metrics"]["values"] == {"train-loss": 0.25, "num-examples": 8}
    assert size >= 4 * (36 + 4)  # at least the raw float32 bytes of the weights
