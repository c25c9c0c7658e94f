"""Per-round metrics, per site and aggregated, as JSON lines and readable log lines."""

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from flwr.app import Message

from common.site_training import AGGREGATION_WEIGHT

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


class RoundLog:
    """Appends one JSON line per (round, phase) to ``RUN/metrics.jsonl``.

    Sites are named through the node-id map gathered in round 0, so a reader
    sees 'site-b', not a random node number.
    """

    def __init__(self, run_dir: Path, site_names: Mapping[int, str], round_offset: int = 0):
        self.path = Path(run_dir) / METRICS_FILE
        self.site_names = dict(site_names)
        self.round_offset = round_offset

    def site_name(self, node_id: int) -> str:
        """The site's name from round 0, or the node number where round 0 did not name it."""
        return self.site_names.get(node_id, str(node_id))

    def record(self, phase: str, server_round: int, replies: Iterable[Message]) -> None:
        per_site: dict[str, dict[str, float]] = {}
        for reply in replies:
            if reply.has_error() or "metrics" not in reply.content.metric_records:
                continue
            name = self.site_name(reply.metadata.src_node_id)
            per_site[name] = {k: float(v) for k, v in reply.content["metrics"].items()}
        weights = {site: m.get("num-examples", 1.0) for site, m in per_site.items()}
        total = sum(weights.values()) or 1.0
        keys = sorted(
            {k for m in per_site.values() for k in m} - {"num-examples", AGGREGATION_WEIGHT}
        )
        aggregate = {
            k: sum(m.get(k, 0.0) * weights[s] for s, m in per_site.items()) / total for k in keys
        }
        absolute = self.round_offset + server_round
        entry = {"round": absolute, "phase": phase, "sites": per_site, "aggregate": aggregate}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
        shown = ", ".join(f"{k} {v:.4f}" for k, v in aggregate.items() if k.endswith("loss"))
        logger.info("round %d %s: %s (%d sites)", absolute, phase, shown, len(per_site))


def read_round_log(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
