"""Round 0 with mock replies: profiles merged, case counts gathered, missing counts refused."""

import pytest
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict

from common.errors import HarmonizationError
from server.profile_round import gather_profiles
from tests.conftest import tiny_profile
from tests.server.replies import site_reply

pytestmark = pytest.mark.usefixtures("task_identity")  # round 0 builds real Flower messages


def answer(node_id: int, name: str, training_cases: int | None, contributes: bool) -> Message:
    """A site's round-0 reply as the ClientApp builds it."""
    content = RecordDict({"site": ConfigRecord({"site-name": name, "contributes": contributes})})
    if training_cases is not None:
        content["metrics"] = MetricRecord({"training-cases": training_cases})
    if contributes:
        content["profile"] = ConfigRecord({"json": tiny_profile(n_cases=3).to_json()})
    return site_reply(node_id, content, "query.profile")


class FakeGrid:
    """Answers round 0's queries with prepared replies, in the order given."""

    def __init__(self, replies: list[Message]) -> None:
        self.replies = replies
        self.asked: list[int] = []

    def send_and_receive(self, messages, timeout):
        self.asked = [message.metadata.dst_node_id for message in messages]
        return self.replies


def test_round_zero_counts_every_sites_training_cases_and_who_holds_the_reference_ones():
    grid = FakeGrid(
        [
            answer(12, "site-b", 5, contributes=False),
            answer(11, "site-a", 2, contributes=True),
            answer(13, "site-c", 5, contributes=False),
        ]
    )

    round_zero = gather_profiles(grid, [11, 12, 13], ["site-a"], min_cases=2, timeout=5)

    assert grid.asked == [11, 12, 13]
    assert round_zero.training_cases == {"site-a": 2, "site-b": 5, "site-c": 5}
    assert round_zero.contributors == ("site-a",)
    assert round_zero.case_counts() == (2, 12)
    assert round_zero.site_names == {11: "site-a", 12: "site-b", 13: "site-c"}


def test_two_reference_sites_both_count_as_reference_cases():
    grid = FakeGrid(
        [
            answer(1, "site-a", 3, contributes=True),
            answer(2, "site-b", 4, contributes=True),
            answer(3, "site-c", 3, contributes=False),
        ]
    )

    round_zero = gather_profiles(grid, [1, 2, 3], [], min_cases=2, timeout=5)

    assert round_zero.case_counts() == (7, 10)
    assert round_zero.profile.n_cases == 6  # the two profiles merged


def test_a_site_that_sends_no_case_count_stops_round_zero_with_its_name():
    grid = FakeGrid([answer(1, "site-a", 3, contributes=True), answer(2, "site-b", None, False)])

    with pytest.raises(HarmonizationError, match="site-b.*training-cases"):
        gather_profiles(grid, [1, 2], ["site-a"], min_cases=2, timeout=5)
