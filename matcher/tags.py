"""Per-tag posting lists: which slots carry each of a gallery's 64 tag bits.

A filtered search needs the live entries carrying any of the filter's bits. Testing
every slot's mask costs a pass over the whole gallery (milliseconds at a million
entries) even when the filter leaves a hundred; the posting lists answer in time
proportional to the entries of the filter's tags. Lists only grow between rebuilds:
a slot that died, was reused, or lost the bit stays listed until the next rebuild
(every compaction), and is dropped at query time by checking the slot's current mask.
"""

from __future__ import annotations

import numpy as np

TAG_BITS = 64
_BIT_VALUES = np.uint64(1) << np.arange(TAG_BITS, dtype=np.uint64)


def bits_of(tag_mask: int) -> list[int]:
    return [bit for bit in range(TAG_BITS) if tag_mask >> bit & 1]


class TagPostings:
    def __init__(self) -> None:
        self._chunks: list[list[np.ndarray]] = [[] for _ in range(TAG_BITS)]
        self._merged: list[np.ndarray | None] = [None] * TAG_BITS

    def add(self, slots: np.ndarray, masks: np.ndarray) -> None:
        """Record that ``slots`` (now searchable) carry ``masks``."""
        if len(slots) == 0:
            return
        carried = (masks[:, None] & _BIT_VALUES) != 0
        for bit in np.flatnonzero(carried.any(axis=0)):
            self._chunks[bit].append(np.asarray(slots, dtype=np.int64)[carried[:, bit]])
            self._merged[bit] = None

    def clear(self, bit: int) -> None:
        self._chunks[bit] = []
        self._merged[bit] = None

    def rebuild(self, search_masks: np.ndarray) -> None:
        """Lists from scratch: exactly the slots whose current mask has each bit."""
        for bit in range(TAG_BITS):
            slots = np.flatnonzero(search_masks & _BIT_VALUES[bit])
            self._chunks[bit] = [slots] if len(slots) else []
            self._merged[bit] = slots

    def listed(self, tag_mask: int) -> int:
        """Entries listed under the filter's bits: at least the number that pass it."""
        return sum(len(self._list(bit)) for bit in bits_of(tag_mask))

    def candidates(self, tag_mask: int, search_masks: np.ndarray) -> np.ndarray:
        """Sorted slots whose current mask shares a bit with ``tag_mask``."""
        parts = [self._list(bit) for bit in bits_of(tag_mask)]
        listed = parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))
        current: np.ndarray = listed[(search_masks[listed] & np.uint64(tag_mask)) != 0]
        return current

    def _list(self, bit: int) -> np.ndarray:
        merged = self._merged[bit]
        if merged is None:
            chunks = self._chunks[bit]
            merged = np.unique(np.concatenate(chunks)) if chunks else np.zeros(0, np.int64)
            # Safe under a shared lock: concurrent readers compute the same array.
            self._merged[bit] = merged
        return merged
