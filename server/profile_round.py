"""Round 0: gather the sites' reference profiles and merge them into the consortium's.

Every site answers with its name and its count of training cases; contributing
sites also send their profile. The merged profile is the shared target every
site maps its cases onto; the counts set how strongly pseudo-targets are denoised.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from common.errors import HarmonizationError
from common.profile import ReferenceProfile, merge_profiles
from common.site_training import TRAINING_CASES

logger = logging.getLogger(__name__)

NODE_POLL_SECONDS = 1.0


def wait_for_sites(grid: Grid, min_sites: int, timeout: float) -> list[int]:
    """Node ids of the connected sites, once at least ``min_sites`` have connected."""
    deadline = time.monotonic() + timeout
    while True:
        node_ids = sorted(grid.get_node_ids())
        if len(node_ids) >= min_sites:
            return node_ids
        if time.monotonic() > deadline:
            raise HarmonizationError(
                f"only {len(node_ids)} of the required {min_sites} sites connected "
                f"within {timeout:.0f} s"
            )
        time.sleep(NODE_POLL_SECONDS)


def _training_cases(reply: Message, name: str) -> int:
    metrics = reply.content.metric_records.get("metrics")
    if metrics is None or TRAINING_CASES not in metrics:
        raise HarmonizationError(
            f"site {name} sent no '{TRAINING_CASES}' in round 0: it runs an older "
            "fedharmonize; every site needs the server's version"
        )
    return int(metrics[TRAINING_CASES])


@dataclass(frozen=True)
class RoundZero:
    """What round 0 established: the shared target and who is who."""

    profile: ReferenceProfile
    site_names: dict[int, str]
    contributors: tuple[str, ...]
    training_cases: dict[str, int]  # site name -> cases it trains on

    def case_counts(self) -> tuple[int, int]:
        """Training cases at the reference (contributing) sites, and at all sites."""
        reference = sum(self.training_cases[name] for name in self.contributors)
        return reference, sum(self.training_cases.values())


def gather_profiles(
    grid: Grid,
    node_ids: Sequence[int],
    required_sites: Sequence[str],
    min_cases: int,
    timeout: float,
) -> RoundZero:
    """Ask every site for its profile; merge the contributed ones."""
    messages = [
        Message(
            content=RecordDict({"config": ConfigRecord({"server-round": 0})}),
            message_type="query.profile",
            dst_node_id=node_id,
        )
        for node_id in node_ids
    ]
    names: dict[int, str] = {}
    cases: dict[str, int] = {}
    contributions: dict[str, ReferenceProfile] = {}
    for reply in grid.send_and_receive(messages, timeout=timeout):
        node_id = reply.metadata.src_node_id
        if reply.has_error():
            raise HarmonizationError(f"site node {node_id} failed in round 0: {reply.error.reason}")
        name = str(reply.content["site"]["site-name"])
        names[node_id] = name
        cases[name] = _training_cases(reply, name)
        if bool(reply.content["site"]["contributes"]):
            text = str(reply.content["profile"]["json"])
            contributions[name] = ReferenceProfile.from_json(text, f"profile from site {name}")
    missing = [node_id for node_id in node_ids if node_id not in names]
    if missing:
        raise HarmonizationError(f"{len(missing)} site(s) did not answer round 0 in time")
    absent = [name for name in required_sites if name not in contributions]
    if absent:
        raise HarmonizationError(
            f"reference site(s) {', '.join(absent)} sent no profile "
            f"(connected: {', '.join(sorted(names.values()))}; a site contributes only "
            "if its site.toml allows it)"
        )
    # in site order, not arrival order: the weighted average's last bits depend on it
    merged = merge_profiles([contributions[name] for name in sorted(contributions)], min_cases)
    logger.info(
        "round 0: consortium profile from %s (%d cases)",
        ", ".join(sorted(contributions)),
        merged.n_cases,
    )
    return RoundZero(merged, names, tuple(sorted(contributions)), cases)
