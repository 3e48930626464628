"""Reading a DescribeGroups answer for one member (shared/membership.py)."""

from __future__ import annotations

from dohawatch.shared.membership import listed

MEMBERS = [("m-1", "c", "h", b"", b""), ("m-2", "c", "h", b"", b"")]


def test_a_stable_group_lists_its_members_and_not_others() -> None:
    groups = [(0, "g", "Stable", "consumer", "range", MEMBERS)]
    assert listed(groups, "g", "m-1") is True
    assert listed(groups, "g", "m-3") is False


def test_a_rebalancing_failed_or_absent_group_tells_nothing() -> None:
    assert listed([(0, "g", "PreparingRebalance", "consumer", "", [])], "g", "m-1") is None
    assert listed([(0, "g", "CompletingRebalance", "consumer", "", [])], "g", "m-1") is None
    assert listed([(16, "g", "Stable", "consumer", "range", [])], "g", "m-1") is None
    assert listed([(0, "h", "Stable", "consumer", "range", MEMBERS)], "g", "m-1") is None
    assert listed([], "g", "m-1") is None
