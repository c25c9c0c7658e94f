"""What may leave the hospital, checked and written down for every reply.

A Flower mod wraps every ClientApp handler. Before a reply goes out it is
checked against an allow-list, and then one JSON line describing it (round,
message type, record names, keys, array shapes, bytes) is appended to the
site's ledger. Allowed are:

- model arrays, under ``arrays``, with exactly the model's names and shapes;
- scalar metrics, under ``metrics`` (in round 0, the site's count of training
  cases);
- the site's reference profile (a validated profile from at least
  ``min_cases`` cases) under ``profile``, and the site's name under ``site``.

Anything else (an image-shaped array, a list of per-case values, a file name)
stops the reply with an error instead of sending it.
"""

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from flwr.app import ConfigRecord, Context, Message, RecordDict

from common.errors import HarmonizationError
from common.profile import ReferenceProfile

ARRAYS = "arrays"
METRICS = "metrics"
PROFILE = "profile"
SITE = "site"
ALLOWED_CONFIG_KEYS = {PROFILE: {"json"}, SITE: {"site-name", "contributes"}}


class PrivacyViolationError(HarmonizationError):
    """A reply held something outside the allow-list; it was not sent."""


def check_reply(
    content: RecordDict, expected_shapes: Mapping[str, tuple[int, ...]], min_cases: int
) -> None:
    """Raise :class:`PrivacyViolationError` unless ``content`` is on the allow-list."""
    for name, record in content.array_records.items():
        if name != ARRAYS:
            raise PrivacyViolationError(f"array record '{name}' is not allowed to leave the site")
        shapes = {key: tuple(array.shape) for key, array in record.items()}
        if shapes != dict(expected_shapes):
            unexpected = sorted(set(shapes.items()) - set(expected_shapes.items()))[:3]
            raise PrivacyViolationError(
                f"arrays do not match the model's names and shapes: {unexpected}"
            )
    for name, record in content.metric_records.items():
        if name != METRICS:
            raise PrivacyViolationError(f"metric record '{name}' is not allowed to leave the site")
        for key, value in record.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise PrivacyViolationError(f"metric '{key}' is not a single number")
    for name, record in content.config_records.items():
        allowed = ALLOWED_CONFIG_KEYS.get(name)
        if allowed is None or set(record.keys()) - allowed:
            raise PrivacyViolationError(f"config record '{name}' with keys {sorted(record.keys())}")
        if name == PROFILE:
            check_profile(record, min_cases)


def check_profile(record: ConfigRecord, min_cases: int) -> None:
    profile = ReferenceProfile.from_json(str(record["json"]), "outgoing reference profile")
    if profile.n_cases < min_cases:
        raise PrivacyViolationError(
            f"reference profile from {profile.n_cases} cases; at least {min_cases} required"
        )


def absolute_round(config: ConfigRecord) -> int:
    """Round number across resumes: the strategy restarts at 1, the offset says where."""
    return int(config.get("round-offset", 0)) + int(config.get("server-round", 0))


def describe_reply(content: RecordDict) -> tuple[dict[str, object], int]:
    """What a reply holds, for the ledger: record kinds, keys, shapes; and its size in bytes."""
    records: dict[str, object] = {}
    size = 0
    for name, record in content.array_records.items():
        records[name] = {"kind": "arrays", "shapes": {k: list(a.shape) for k, a in record.items()}}
        size += sum(len(a.data) for a in record.values())
    for name, record in content.metric_records.items():
        records[name] = {"kind": "metrics", "values": dict(record.items())}
        size += 8 * len(record)
    for name, record in content.config_records.items():
        records[name] = {"kind": "config", "keys": sorted(record.keys())}
        size += sum(len(str(v).encode()) for v in record.values())
    return records, size


def append_ledger(path: Path, entry: dict[str, object]) -> None:
    """One JSON line per reply, flushed and synced: the site's proof of what left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()


LedgerTarget = Callable[[Context], tuple[Path, Mapping[str, tuple[int, ...]], int]]


def make_privacy_mod(target: LedgerTarget) -> Callable[..., Message]:
    """A Flower mod that checks and records every outgoing reply.

    ``target(context)`` gives the ledger path, the model's array shapes and the
    minimum case count for this node.
    """

    def privacy_mod(message: Message, context: Context, call_next: Callable) -> Message:
        reply = call_next(message, context)
        if not reply.has_content():
            return reply
        ledger, shapes, min_cases = target(context)
        check_reply(reply.content, shapes, min_cases)
        records, size = describe_reply(reply.content)
        config = message.content.config_records.get("config")
        append_ledger(
            ledger,
            {
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "round": absolute_round(config) if config else 0,
                "message_type": message.metadata.message_type,
                "records": records,
                "bytes": size,
            },
        )
        return reply

    return privacy_mod
