"""Site replies as the server receives them, for tests without a running federation."""

import time

from flwr.app import Message, Metadata, RecordDict


def site_reply(node_id: int, content: RecordDict, message_type: str) -> Message:
    """A reply from ``node_id`` holding ``content``, with the metadata Flower would stamp."""
    metadata = Metadata(
        run_id=1,
        message_id=f"m{node_id}",
        src_node_id=node_id,
        dst_node_id=0,
        reply_to_message_id="q",
        group_id="1",
        created_at=time.time(),
        ttl=60.0,
        message_type=message_type,
    )
    return Message(content=content, metadata=metadata)
