"""Galleries on disk: one HNSW file per graph segment plus the slot arrays, written
atomically."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from matcher.gallery import Gallery, GalleryState
from matcher.params import IndexParams

ARRAYS_FILE = "slots.npz"
META_FILE = "gallery.json"


def save_gallery(gallery: Gallery, directory: Path) -> None:
    """Write ``gallery`` into the new directory ``directory`` (one consistent state: the
    read lock is held while the arrays and the graph are written)."""
    directory.mkdir(parents=True)
    with gallery.reading():
        state = gallery.export_state()
        graph_files = _graph_files(directory, len(state.graph_capacities))
        gallery.save_graph(graph_files)
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
        "graph_capacities": state.graph_capacities,
        "graph_dead": state.graph_dead,
    }
    (directory / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    for path in (directory / ARRAYS_FILE, directory / META_FILE, *graph_files):
        fsync_path(path)
    fsync_path(directory)


def load_gallery(directory: Path) -> Gallery:
    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    graph_files = _graph_files(directory, len(meta.get("graph_capacities", ())))
    if "index_capacity" in meta:  # written before graphs had segments: one, in hnsw.bin
        meta["params"]["graph_segments"] = 1
        has_graph = int(meta["index_capacity"]) > 0
        meta["graph_capacities"] = [meta["index_capacity"]] if has_graph else []
        meta["graph_dead"] = [meta["dead"]] if has_graph else []
        graph_files = [directory / "hnsw.bin"]
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
            graph_capacities=[int(c) for c in meta["graph_capacities"]],
            graph_dead=[int(d) for d in meta["graph_dead"]],
        )
    return Gallery.restore(state, graph_files)


def _graph_files(directory: Path, segments: int) -> list[Path]:
    return [directory / f"hnsw-{segment}.bin" for segment in range(segments)]


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (so a rename or a new entry in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
