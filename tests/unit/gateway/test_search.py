"""Grouping matcher hits into NEC candidates."""

from __future__ import annotations

from gateway.search import CandidateMatch, EventMatch, group_by_subject


def test_hits_group_by_subject_in_order_of_each_best_hit() -> None:
    hits = [("s1", "e1", 9000), ("s2", "e2", 8500), ("s1", "e3", 8000), ("s3", "e4", 7100)]
    assert group_by_subject(hits) == (
        CandidateMatch("s1", 9000, (EventMatch("e1", 9000), EventMatch("e3", 8000))),
        CandidateMatch("s2", 8500, (EventMatch("e2", 8500),)),
        CandidateMatch("s3", 7100, (EventMatch("e4", 7100),)),
    )
    assert group_by_subject([]) == ()
