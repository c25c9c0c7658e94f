"""Per-round metrics, per site and aggregated, as JSON lines and readable log lines."""

import json
import logging
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from flwr.app import Message

from common.site_training import AGGREGATION_WEIGHT

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


class RoundLog:
    """Appends one JSON line per (round, phase) to ``RUN/metrics.jsonl``.

    Sites are named through the node-id map gathered in round 0, so a reader
    sees 'site-b', not a random node number.

    Where only some sites are ``reference_sites``, each line also carries their
    own average (``"reference"``). A non-reference site's held-out target is its
    own scan, which a model that harmonizes well stops copying, so the average
    over all sites can rise while the model improves; the reference sites'
    held-out loss is the one that tracks fidelity to the reference contrast.
    """

    def __init__(
        self,
        run_dir: Path,
        site_names: Mapping[int, str],
        round_offset: int = 0,
        reference_sites: Collection[str] = (),
    ):
        self.path = Path(run_dir) / METRICS_FILE
        self.site_names = dict(site_names)
        self.round_offset = round_offset
        self.reference_sites = frozenset(reference_sites)

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
        absolute = self.round_offset + server_round
        aggregate = weighted_average(per_site)
        entry = {"round": absolute, "phase": phase, "sites": per_site, "aggregate": aggregate}
        reference = {s: m for s, m in per_site.items() if s in self.reference_sites}
        if reference and len(reference) < len(per_site):
            entry["reference"] = weighted_average(reference)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
        logger.info("round %d %s: %s (%d sites)", absolute, phase, losses_of(entry), len(per_site))


def weighted_average(per_site: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each metric averaged over the sites, weighted by the examples each site saw."""
    weights = {site: m.get("num-examples", 1.0) for site, m in per_site.items()}
    total = sum(weights.values()) or 1.0
    keys = sorted({k for m in per_site.values() for k in m} - {"num-examples", AGGREGATION_WEIGHT})
    return {k: sum(m.get(k, 0.0) * weights[s] for s, m in per_site.items()) / total for k in keys}


def losses_of(entry: Mapping) -> str:
    """One log line's loss figures: over all sites, then over the reference sites if apart."""

    def shown(metrics: Mapping[str, float]) -> str:
        return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.endswith("loss"))

    text = shown(entry["aggregate"])
    if "reference" in entry:
        text += f"; at the reference sites {shown(entry['reference'])}"
    return text


def read_round_log(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
