"""Recognizer: aligned 112 x 112 crops -> L2-normalised embeddings, in batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extractor.models.catalog import Preprocess
from extractor.runtime import OnnxModel


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray
    """N x D float32, each row of unit length."""
    norms: np.ndarray
    """N, the length of each raw network output (a quality signal)."""


class Recognizer:
    def __init__(self, model: OnnxModel, pre: Preprocess, *, flip: bool = False) -> None:
        self.model = model
        self.pre = pre
        self.flip = flip
        self._mean = np.asarray(pre.mean, dtype=np.float32)
        self._scale = 1.0 / np.asarray(pre.std, dtype=np.float32)

    def _tensor(self, crops: np.ndarray) -> np.ndarray:
        pixels = crops if self.pre.channel_order == "BGR" else crops[..., ::-1]
        batch = (pixels.astype(np.float32) - self._mean) * self._scale
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))

    def embed(self, crops: np.ndarray) -> Embeddings:
        """``crops``: N x 112 x 112 x 3 BGR uint8."""
        raw = np.asarray(self.model.run(self._tensor(crops))[0], dtype=np.float32)
        if self.flip:
            raw = raw + np.asarray(self.model.run(self._tensor(crops[:, :, ::-1]))[0])
        norms = np.linalg.norm(raw, axis=1)
        vectors = raw / np.maximum(norms, 1e-12)[:, None]
        return Embeddings(vectors.astype(np.float32), norms.astype(np.float32))
