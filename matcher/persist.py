"""Galleries on disk: the HNSW index file plus the slot arrays, written atomically."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from matcher.gallery import Gallery, GalleryState, IndexParams

INDEX_FILE = "hnsw.bin"
ARRAYS_FILE = "slots.npz"
META_FILE = "gallery.json"


def save_gallery(gallery: Gallery, directory: Path) -> None:
    """Write ``gallery`` into the new directory ``directory`` (one consistent state: the
    read lock is held while the arrays and the graph are written)."""
    directory.mkdir(parents=True)
    with gallery.reading():
        state = gallery.export_state()
        has_graph = gallery.save_index(directory / INDEX_FILE)
        np.savez(
            directory / ARRAYS_FILE,
            vectors=state.vectors,
            masks=state.masks,
            alive=state.alive,
            indexed=state.indexed,
            event_ids=np.array(state.event_ids, dtype=str),
            subject_ids=np.array(state.subject_ids, dtype=str),
            free=np.asarray(state.free, dtype=np.int64),
            pending=state.pending,
            projection=(
                state.projection if state.projection is not None else np.zeros((0, 0), np.float32)
            ),
        )
    meta = {
        "gallery_id": state.gallery_id,
        "model_id": state.model_id,
        "dim": state.dim,
        "params": asdict(state.params),
        "dead": state.dead,
        "index_capacity": state.index_capacity,
    }
    (directory / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    for name in (ARRAYS_FILE, META_FILE, *((INDEX_FILE,) if has_graph else ())):
        fsync_path(directory / name)
    fsync_path(directory)


def load_gallery(directory: Path) -> Gallery:
    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    with np.load(directory / ARRAYS_FILE, allow_pickle=False) as arrays:
        projection = arrays["projection"]
        state = GalleryState(
            gallery_id=meta["gallery_id"],
            model_id=meta["model_id"],
            dim=int(meta["dim"]),
            params=IndexParams(**meta["params"]),
            vectors=arrays["vectors"],
            masks=arrays["masks"],
            alive=arrays["alive"],
            indexed=arrays["indexed"],
            event_ids=[str(e) for e in arrays["event_ids"]],
            subject_ids=[str(s) for s in arrays["subject_ids"]],
            free=[int(s) for s in arrays["free"]],
            pending=arrays["pending"],
            projection=projection if projection.size else None,
            dead=int(meta["dead"]),
            index_capacity=int(meta["index_capacity"]),
        )
    return Gallery.restore(state, directory / INDEX_FILE)


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (so a rename or a new entry in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
