"""The configured Flower strategy, with per-site metric logging added.

Only the two aggregation hooks are overridden, to record every reply in the
round log before Flower's own aggregation runs; the round loop is Flower's.
"""

from collections.abc import Iterable

from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.serverapp import strategy as flwr_strategy

from common.configs.federation import FederationConfig
from common.site_training import AGGREGATION_WEIGHT
from server.round_log import RoundLog


class RecordingMixin:
    """Writes each round's per-site metrics, then defers to the strategy.

    Replies reach the server in the order the sites finish, which load decides.
    The average is a float32 sum, and its last bits depend on that order, which
    training then amplifies; so replies are put in site order first, and
    arrival order no longer reaches the model.
    """

    round_log: RoundLog

    def _in_site_order(self, replies: Iterable[Message]) -> list[Message]:
        def site(reply: Message) -> tuple[str, int]:
            node = reply.metadata.src_node_id
            return self.round_log.site_name(node), node

        return sorted(replies, key=site)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = self._in_site_order(replies)
        self.round_log.record("train", server_round, replies)
        return super().aggregate_train(server_round, replies)  # type: ignore[misc]

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        replies = self._in_site_order(replies)
        self.round_log.record("evaluate", server_round, replies)
        return super().aggregate_evaluate(server_round, replies)  # type: ignore[misc]


STRATEGIES = {
    "fedavg": flwr_strategy.FedAvg,
    "fedprox": flwr_strategy.FedProx,
    "fedadam": flwr_strategy.FedAdam,
    "fedmedian": flwr_strategy.FedMedian,
    "fedtrimmedavg": flwr_strategy.FedTrimmedAvg,
    "krum": flwr_strategy.Krum,
}


def build_strategy(run: FederationConfig, num_sites: int, round_log: RoundLog):
    """The strategy named in the run config, sampling every site every round."""
    base = STRATEGIES[run.strategy]
    recording = type(f"Recording{base.__name__}", (RecordingMixin, base), {})
    options: dict[str, object] = {
        "min_train_nodes": num_sites,
        "min_evaluate_nodes": num_sites,
        "min_available_nodes": num_sites,
        # examples x each site's influence (1 for reference sites; see describe_result)
        "weighted_by_key": AGGREGATION_WEIGHT,
    }
    if run.strategy == "fedprox":
        options["proximal_mu"] = run.proximal_mu
    elif run.strategy == "fedadam":
        options["eta"] = run.server_learning_rate
    elif run.strategy == "fedtrimmedavg":
        options["beta"] = run.trimmed_fraction
    elif run.strategy == "krum":
        options["num_malicious_nodes"] = run.krum_byzantine
    strategy = recording(**options)
    strategy.round_log = round_log
    return strategy
