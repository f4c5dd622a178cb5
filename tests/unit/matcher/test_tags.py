"""Tag posting lists: the slots carrying a filter's bits, stale entries dropped."""

from __future__ import annotations

import numpy as np

from matcher.tags import TagPostings, bits_of


def brute(search_masks: np.ndarray, tag_mask: int) -> list[int]:
    return np.flatnonzero(search_masks & np.uint64(tag_mask)).tolist()


def test_bits_of() -> None:
    assert bits_of(0) == []
    assert bits_of(0b1011) == [0, 1, 3]
    assert bits_of(1 << 63) == [63]


def test_candidates_follow_the_current_masks() -> None:
    rng = np.random.default_rng(0)
    n = 5000
    search_masks = rng.integers(0, 1 << 8, n).astype(np.uint64)
    search_masks[rng.random(n) < 0.1] |= np.uint64(1 << 63)
    postings = TagPostings()
    for start in range(0, n, 700):  # added in chunks, as merges do
        slots = np.arange(start, min(n, start + 700))
        postings.add(slots, search_masks[slots])
    for tag_mask in (1, 2, 0b1010_0000, 1 << 63, (1 << 63) | 1):
        assert postings.candidates(tag_mask, search_masks).tolist() == brute(search_masks, tag_mask)
    # Entries die or lose bits: still listed, but no longer returned.
    search_masks[:2500] = 0
    search_masks[2500:] &= ~np.uint64(1)
    for tag_mask in (1, 2, 1 << 63):
        assert postings.candidates(tag_mask, search_masks).tolist() == brute(search_masks, tag_mask)
    # A slot reused by a new entry appears once, even when listed twice.
    search_masks[10] = np.uint64(2)
    postings.add(np.array([10]), search_masks[[10]])
    assert postings.candidates(2, search_masks).tolist() == brute(search_masks, 2)


def test_clear_and_rebuild() -> None:
    search_masks = np.array([1, 3, 2, 0, 1], dtype=np.uint64)
    postings = TagPostings()
    postings.add(np.arange(5), search_masks)
    postings.clear(0)
    assert postings.candidates(1, search_masks).tolist() == []
    postings.rebuild(search_masks)
    assert postings.candidates(1, search_masks).tolist() == [0, 1, 4]
    assert postings.candidates(2, search_masks).tolist() == [1, 2]
