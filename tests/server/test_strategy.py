"""Strategies with mock replies: per-site logging, aggregation, every configured name builds."""

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from common.configs.federation import FederationConfig
from server.round_log import RoundLog, read_round_log
from server.strategy import STRATEGIES, build_strategy
from tests.server.replies import site_reply


def reply(
    node_id: int, weight: float, loss: float, examples: int, influence: float = 1.0
) -> Message:
    metrics = {
        "train-loss": loss,
        "num-examples": examples,
        "aggregation-weight": examples * influence,
    }
    content = RecordDict(
        {
            "arrays": ArrayRecord({"w": torch.full((2, 2), weight)}),
            "metrics": MetricRecord(metrics),
        }
    )
    return site_reply(node_id, content, "train")


def test_fedavg_weights_by_examples_and_logs_every_site(tmp_path):
    log = RoundLog(tmp_path, {11: "site-a", 12: "site-b"}, round_offset=2)
    strategy = build_strategy(FederationConfig(), num_sites=2, round_log=log)

    arrays, metrics = strategy.aggregate_train(
        1, [reply(11, 1.0, 0.5, 30), reply(12, 4.0, 0.2, 10)]
    )

    np.testing.assert_allclose(arrays["w"].numpy(), np.full((2, 2), 1.75))  # (30*1 + 10*4) / 40
    assert abs(metrics["train-loss"] - 0.425) < 1e-9
    [entry] = read_round_log(tmp_path)
    assert entry["round"] == 3 and entry["phase"] == "train"
    assert entry["sites"]["site-a"]["train-loss"] == 0.5
    assert entry["sites"]["site-b"]["num-examples"] == 10
    assert abs(entry["aggregate"]["train-loss"] - 0.425) < 1e-9


def test_the_log_averages_the_reference_sites_apart_where_others_took_part(tmp_path, caplog):
    """A foreign site's held-out loss rises as the model stops copying its scan; say so apart."""
    names = {11: "site-a", 12: "site-b", 13: "site-c"}
    log = RoundLog(tmp_path / "mixed", names, reference_sites=("site-a",))
    replies = [reply(11, 1.0, 0.5, 30), reply(12, 1.0, 0.2, 10), reply(13, 1.0, 0.1, 10)]

    with caplog.at_level("INFO", logger="server.round_log"):
        log.record("train", 1, replies)

    [entry] = read_round_log(tmp_path / "mixed")
    assert abs(entry["aggregate"]["train-loss"] - 0.36) < 1e-9  # (30*0.5 + 10*0.2 + 10*0.1) / 50
    assert entry["reference"] == {"train-loss": 0.5}
    assert "at the reference sites train-loss 0.5000" in caplog.text

    only_reference = RoundLog(tmp_path / "all", names, reference_sites=names.values())
    only_reference.record("train", 1, replies)
    assert "reference" not in read_round_log(tmp_path / "all")[0]


def test_a_site_outside_the_reference_contrast_counts_by_its_influence(tmp_path):
    strategy = build_strategy(FederationConfig(), num_sites=2, round_log=RoundLog(tmp_path, {}))

    arrays, _ = strategy.aggregate_train(
        1, [reply(11, 1.0, 0.5, 30), reply(12, 4.0, 0.2, 30, influence=0.5)]
    )

    np.testing.assert_allclose(arrays["w"].numpy(), np.full((2, 2), 2.0))  # (30*1 + 15*4) / 45
    [entry] = read_round_log(tmp_path)
    assert "aggregation-weight" not in entry["aggregate"]


def test_the_average_is_the_same_whichever_site_answers_first(tmp_path):
    """Float32 sums depend on their order; the server must not let arrival order in."""
    rng = np.random.default_rng(0)
    values = [torch.from_numpy(rng.normal(size=4096).astype(np.float32)) for _ in range(3)]

    def replies() -> list[Message]:
        made = [reply(node, 0.0, 0.1, examples) for node, examples in ((7, 30), (3, 11), (5, 17))]
        for message, value in zip(made, values, strict=True):
            message.content["arrays"] = ArrayRecord({"w": value})
        return made

    names = {3: "site-c", 5: "site-a", 7: "site-b"}
    averages = []
    for order in ((0, 1, 2), (2, 1, 0), (1, 2, 0)):
        strategy = build_strategy(FederationConfig(), 3, RoundLog(tmp_path / str(order), names))
        arrived = replies()
        arrays, _ = strategy.aggregate_train(1, [arrived[i] for i in order])
        averages.append(arrays["w"].numpy())

    assert averages[0].tobytes() == averages[1].tobytes() == averages[2].tobytes()


def test_fedmedian_is_robust_to_one_outlier(tmp_path):
    log = RoundLog(tmp_path, {})
    strategy = build_strategy(FederationConfig(strategy="fedmedian"), 3, log)
    replies = [reply(1, 1.0, 0.1, 10), reply(2, 1.2, 0.1, 10), reply(3, 1000.0, 0.1, 10)]

    arrays, _ = strategy.aggregate_train(1, replies)

    np.testing.assert_allclose(arrays["w"].numpy(), np.full((2, 2), 1.2))


class FakeGrid:
    """Just enough of a Grid for ``configure_train``: three connected nodes."""

    def get_node_ids(self):
        return [1, 2, 3]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.usefixtures("task_identity")
def test_every_strategy_builds_and_aggregates(tmp_path, name):
    strategy = build_strategy(FederationConfig(strategy=name), 3, RoundLog(tmp_path, {}))
    replies = [reply(1, 1.0, 0.3, 10), reply(2, 2.0, 0.2, 10), reply(3, 3.0, 0.1, 10)]
    initial = ArrayRecord({"w": torch.full((2, 2), 2.0)})
    messages = list(strategy.configure_train(1, initial, ConfigRecord(), FakeGrid()))

    arrays, metrics = strategy.aggregate_train(1, replies)

    assert sorted(m.metadata.dst_node_id for m in messages) == [1, 2, 3]
    assert type(strategy).__name__ == f"Recording{STRATEGIES[name].__name__}"
    assert arrays is not None and arrays["w"].numpy().shape == (2, 2)
    assert 1.0 <= float(arrays["w"].numpy().mean()) <= 3.0
    assert metrics is not None


def test_fedprox_sends_its_proximal_term():
    strategy = build_strategy(FederationConfig(strategy="fedprox", proximal_mu=0.3), 2, None)

    assert strategy.proximal_mu == 0.3


def test_run_config_is_validated_with_the_key_named():
    from common.configs.validation import parse_config
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="strategy"):
        parse_config(FederationConfig, {"strategy": "fedbest"}, "run config")
    with pytest.raises(ConfigError, match="unknown field 'num-rounds'"):
        parse_config(FederationConfig, {"num-rounds": 3}, "run config")
    parsed = parse_config(
        FederationConfig, {"num-server-rounds": 4, "reference-sites": " a, b ,"}, "x"
    )
    assert parsed.num_server_rounds == 4 and parsed.reference_site_names == ("a", "b")
