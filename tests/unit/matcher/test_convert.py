"""Matcher domain <-> protobuf conversions: a round trip for each message, and descriptor
walks that fail when a field of matcher.proto is not carried in both directions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from facegate.templates import template_to_proto
from facegate.v1 import common_pb2, matcher_pb2
from matcher.convert import (
    SearchQuery,
    clear_tag_bit_request_from_proto,
    clear_tag_bit_request_to_proto,
    delete_request_from_proto,
    delete_request_to_proto,
    delete_subject_request_from_proto,
    delete_subject_request_to_proto,
    drop_gallery_request_from_proto,
    drop_gallery_request_to_proto,
    entry_from_proto,
    entry_to_proto,
    hit_from_proto,
    hit_to_proto,
    params_from_proto,
    params_to_proto,
    probe_result_from_proto,
    probe_result_to_proto,
    search_request_from_proto,
    search_request_to_proto,
    search_response_from_proto,
    search_response_to_proto,
    snapshot_response_from_proto,
    snapshot_response_to_proto,
    stats_from_proto,
    stats_request_from_proto,
    stats_request_to_proto,
    stats_to_proto,
    template_from_proto,
    upsert_request_from_proto,
    upsert_request_to_proto,
    write_response_from_proto,
    write_response_to_proto,
)
from matcher.gallery import Hit
from matcher.params import IndexParams
from matcher.results import ShardStats
from matcher.writes import ClearTagBit, Delete, DeleteSubject, DropGallery, ShardEntry, Upsert
from tests.support.messages import unset_fields

MODEL_ID = "synthetic-8@0123456789ab"
# Every sample value is non-default, distinct, and exact in float32 / its proto type.
TOP_BIT = 1 << 63


def vector(seed: int) -> np.ndarray:
    """float32 values that are exact in float32, so round trips compare exactly."""
    rng = np.random.default_rng(seed)
    return (rng.integers(-64, 64, size=8) / 64.0 + 1 / 128).astype(np.float32)


def entry(n: int) -> ShardEntry:
    return ShardEntry(
        f"gallery-{n}", f"event-{n}", f"subject-{n}", MODEL_ID, vector(n), TOP_BIT | n
    )


def hit(n: int) -> Hit:
    return Hit(f"event-{n}", f"subject-{n}", 0.5 + n / 64)


def params() -> IndexParams:
    return IndexParams(m=12, ef_construction=150, ef_search=40, graph_segments=3)


@dataclass(frozen=True)
class Case:
    """A message type, a domain value with every field set, and its two converters."""

    message: type[Message]
    value: Any
    to_proto: Callable[[Any], Message]
    from_proto: Callable[[Any], Any]


WRITE_RESPONSES: list[type[Message]] = [
    matcher_pb2.MatcherUpsertResponse,
    matcher_pb2.MatcherDeleteResponse,
    matcher_pb2.MatcherDeleteSubjectResponse,
    matcher_pb2.MatcherClearTagBitResponse,
    matcher_pb2.MatcherDropGalleryResponse,
]


def _write_response_case(response: type[Message]) -> Case:
    return Case(
        response,
        41,
        lambda seq: write_response_to_proto(response, seq),  # type: ignore[type-var]
        write_response_from_proto,
    )


CASES: list[Case] = [
    Case(
        common_pb2.Template,
        (MODEL_ID, vector(1)),
        lambda probe: template_to_proto(*probe),
        template_from_proto,
    ),
    Case(matcher_pb2.MatcherEntry, entry(1), entry_to_proto, entry_from_proto),
    Case(
        matcher_pb2.MatcherUpsertRequest,
        Upsert((entry(1), entry(2))),
        upsert_request_to_proto,
        upsert_request_from_proto,
    ),
    Case(
        matcher_pb2.MatcherDeleteRequest,
        Delete("gallery-1", ("event-1", "event-2")),
        delete_request_to_proto,
        delete_request_from_proto,
    ),
    Case(
        matcher_pb2.MatcherDeleteSubjectRequest,
        DeleteSubject("gallery-1", "subject-1"),
        delete_subject_request_to_proto,
        delete_subject_request_from_proto,
    ),
    Case(
        matcher_pb2.MatcherClearTagBitRequest,
        ClearTagBit("gallery-1", 63),
        clear_tag_bit_request_to_proto,
        clear_tag_bit_request_from_proto,
    ),
    Case(
        matcher_pb2.MatcherDropGalleryRequest,
        DropGallery("gallery-1"),
        drop_gallery_request_to_proto,
        drop_gallery_request_from_proto,
    ),
    *[_write_response_case(r) for r in WRITE_RESPONSES],
    Case(
        matcher_pb2.MatcherSearchRequest,
        SearchQuery(
            "gallery-1",
            ((MODEL_ID, vector(1)), (MODEL_ID, vector(2))),
            k=50,
            min_similarity=-0.8125,
            tag_mask=TOP_BIT | 5,
        ),
        search_request_to_proto,
        search_request_from_proto,
    ),
    Case(matcher_pb2.MatcherHit, hit(1), hit_to_proto, hit_from_proto),
    Case(
        matcher_pb2.MatcherProbeResult,
        [hit(1), hit(2)],
        probe_result_to_proto,
        probe_result_from_proto,
    ),
    Case(
        matcher_pb2.MatcherSearchResponse,
        [[hit(1), hit(2)], [hit(3)]],
        search_response_to_proto,
        search_response_from_proto,
    ),
    Case(
        matcher_pb2.MatcherStatsRequest,
        "gallery-1",
        stats_request_to_proto,
        stats_request_from_proto,
    ),
    Case(matcher_pb2.HnswParameters, params(), params_to_proto, params_from_proto),
    Case(
        matcher_pb2.MatcherStatsResponse,
        ShardStats(
            shard_index=2,
            shard_count=3,
            applied_sequence=(1 << 40) + 7,
            count=1_000_001,
            deleted=17,
            memory_bytes=(1 << 33) + 5,
            params=params(),
        ),
        stats_to_proto,
        stats_from_proto,
    ),
    Case(
        matcher_pb2.MatcherSnapshotResponse,
        (12, Path("/var/lib/facegate/matcher/shard-0/snapshots/00000000000000000012")),
        lambda snap: snapshot_response_to_proto(*snap),
        snapshot_response_from_proto,
    ),
]
# Messages with no fields need no converter.
EMPTY_MESSAGES = {matcher_pb2.MatcherSnapshotRequest}


def plain(value: Any) -> Any:
    """A comparable form of a domain value (numpy arrays and dataclasses included)."""
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.tolist())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return ("path", str(value))
    return value


def case_id(case: Case) -> str:
    return case.message.DESCRIPTOR.name


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_round_trip(case: Case) -> None:
    message = case.to_proto(case.value)
    assert isinstance(message, case.message)
    wire = case.message.FromString(message.SerializeToString())
    assert plain(case.from_proto(wire)) == plain(case.value)


def test_every_matcher_message_has_a_case() -> None:
    """A message added to matcher.proto needs converters (and a case here)."""
    covered = {case.message.DESCRIPTOR.full_name for case in CASES}
    for message in matcher_pb2.DESCRIPTOR.message_types_by_name.values():
        if message.full_name in {m.DESCRIPTOR.full_name for m in EMPTY_MESSAGES}:
            assert not message.fields, f"{message.name} has fields now: it needs converters"
        else:
            assert message.full_name in covered, message.name


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_to_proto_sets_every_field(case: Case) -> None:
    """Fails when a field is added to a message without its to_proto writing it."""
    assert unset_fields(case.to_proto(case.value)) == []


FieldPath = tuple[tuple[str, int | None], ...]


def leaf_paths(message: Message, prefix: FieldPath = ()) -> Iterator[FieldPath]:
    """Every scalar field, reached through messages and the first repeated element."""
    for field in message.DESCRIPTOR.fields:
        index = 0 if field.is_repeated else None
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            value = getattr(message, field.name)
            child = value[0] if field.is_repeated else value
            yield from leaf_paths(child, (*prefix, (field.name, index)))
        else:
            yield (*prefix, (field.name, index))


def bumped(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, int):
        return value - 1 if value else 1  # stays in range of unsigned and fixed64 fields
    if isinstance(value, float):
        return value + 0.5
    raise TypeError(type(value))


def mutate(message: Message, path: FieldPath) -> None:
    *parents, (name, index) = path
    for parent, parent_index in parents:
        container = getattr(message, parent)
        message = container[parent_index] if parent_index is not None else container
    if index is None:
        setattr(message, name, bumped(getattr(message, name)))
    else:
        container = getattr(message, name)
        container[index] = bumped(container[index])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_from_proto_reads_every_field(case: Case) -> None:
    """Changing any one field of the message changes the domain value it converts to, so
    no field is ignored (or read into the wrong place and overwritten)."""
    full = case.to_proto(case.value)
    original = plain(case.from_proto(full))
    paths = list(leaf_paths(full))
    assert paths
    for path in paths:
        changed = case.message()
        changed.CopyFrom(full)
        mutate(changed, path)
        assert plain(case.from_proto(changed)) != original, path


@pytest.mark.parametrize("response", WRITE_RESPONSES, ids=lambda r: r.DESCRIPTOR.name)
def test_write_responses_carry_only_the_sequence(response: type[Message]) -> None:
    """One converter serves the five write responses: only while they share one shape."""
    assert [f.name for f in response.DESCRIPTOR.fields] == ["sequence"]


def test_unset_stats_gallery_means_the_whole_shard() -> None:
    assert stats_request_from_proto(matcher_pb2.MatcherStatsRequest()) is None
    assert not stats_request_to_proto(None).HasField("gallery_id")
    empty = stats_request_to_proto("")
    assert empty.HasField("gallery_id")
    assert stats_request_from_proto(empty) == ""


def test_unset_template_converts_to_an_empty_probe() -> None:
    """No validation here: the shard refuses it with a message (tested there)."""
    model_id, values = template_from_proto(common_pb2.Template())
    assert model_id == ""
    assert values.dtype == np.float32
    assert values.shape == (0,)
    converted = entry_from_proto(matcher_pb2.MatcherEntry(gallery_id="g"))
    assert converted.model_id == ""
    assert converted.vector.shape == (0,)


def test_template_values_are_float32() -> None:
    model_id, values = template_from_proto(
        common_pb2.Template(model_id=MODEL_ID, embedding=[0.1, 0.2])
    )
    assert model_id == MODEL_ID
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, np.array([0.1, 0.2], dtype=np.float32))


def test_params_from_proto_keeps_the_planner_defaults() -> None:
    back = params_from_proto(params_to_proto(IndexParams(m=8, exact_factor=5.0)))
    assert back.m == 8
    assert back.exact_factor == IndexParams().exact_factor
