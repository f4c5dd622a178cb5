"""The face-selection study's rules and counts on hand-placed boxes."""

from __future__ import annotations

import numpy as np

from bench.face_selection import (
    Photo,
    centrality_margin_rule,
    enrolment_rule,
    evaluate,
    identity_check,
    legacy_enrolment,
    prominent_rule,
)


def _photo(boxes: list[tuple[int, int, int, int]], identity: str = "p", name: str = "x") -> Photo:
    """A 250 x 250 photo (LFW's size), faces given largest area first."""
    embeddings = np.eye(len(boxes), 4)
    return Photo(name, identity, 250, 250, np.array(boxes, dtype=np.float64), embeddings)


# The labelled person in the centre, a wider bystander cut by the frame (0.85).
CENTRED_WITH_WIDER_BYSTANDER = _photo([(150, 0, 250, 100), (83, 83, 168, 168)])
# The labelled person and a bystander half as wide.
WITH_SMALL_BYSTANDER = _photo([(75, 75, 175, 175), (0, 0, 50, 50)])
ALONE = _photo([(75, 75, 175, 175)])


def test_the_labelled_face_is_the_centred_one() -> None:
    assert CENTRED_WITH_WIDER_BYSTANDER.labelled == 1
    assert WITH_SMALL_BYSTANDER.labelled == 0


def test_probe_rules_take_the_centred_face_among_comparable_ones() -> None:
    assert prominent_rule(0.8)(CENTRED_WITH_WIDER_BYSTANDER) == 1
    assert prominent_rule(0.9)(CENTRED_WITH_WIDER_BYSTANDER) == 0  # 0.85: not comparable
    assert prominent_rule(0.8)(WITH_SMALL_BYSTANDER) == 0


def test_enrolment_rules_refuse_comparable_faces_only() -> None:
    assert enrolment_rule(0.8)(CENTRED_WITH_WIDER_BYSTANDER) is None
    assert enrolment_rule(0.9)(CENTRED_WITH_WIDER_BYSTANDER) == 0  # the wrong person
    assert enrolment_rule(0.8)(WITH_SMALL_BYSTANDER) == 0
    assert enrolment_rule(0.5)(WITH_SMALL_BYSTANDER) is None
    assert legacy_enrolment(WITH_SMALL_BYSTANDER) is None
    assert legacy_enrolment(ALONE) == 0
    # The margin rule lets the bystander pass: it is far off centre.
    assert centrality_margin_rule(0.8, 0.5)(CENTRED_WITH_WIDER_BYSTANDER) == 1


def test_evaluate_counts_refusals_wrong_choices_and_accepted_groups() -> None:
    group = _photo([(10, 100, 60, 150), (190, 100, 240, 150)], identity="", name="group")
    result = evaluate([CENTRED_WITH_WIDER_BYSTANDER, WITH_SMALL_BYSTANDER, ALONE], [group])
    probes = {row["rule"]: row for row in result["probe_rules"]}  # type: ignore[attr-defined]
    assert probes["widest"]["lfw_wrong"] == 1
    assert probes["prominent, comparable at 0.8"]["lfw_wrong"] == 0
    enrolments = {row["rule"]: row for row in result["enrolment_rules"]}  # type: ignore[attr-defined]
    shipped = enrolments["prominent, refused if another face >= 0.8 of its width"]
    assert (shipped["lfw_refused"], shipped["lfw_wrong"], shipped["groups_accepted"]) == (1, 0, [])
    never = enrolments["prominent, never refused"]
    assert (never["lfw_refused"], never["groups_accepted"]) == (0, ["group"])


def test_identity_check_compares_with_the_persons_other_photos() -> None:
    other = Photo("y", "p", 250, 250, np.array([[75.0, 75, 175, 175]]), np.eye(1, 4, 1))
    # The centred face (index 1) carries embedding e1, like the person's other photo.
    assert identity_check([CENTRED_WITH_WIDER_BYSTANDER, other]) == {
        "photos": 1,
        "centred_face_best": 1,
    }
