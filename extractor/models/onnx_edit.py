"""Graph edits that make published ONNX exports usable for batched, any-size inference.

SFace and EdgeFace-S were exported with the batch dimension fixed at 1 (EdgeFace's
Reshape nodes hard-code it), and YuNet at a fixed 640x640 input. The edits below free
those dimensions without touching any weight; :func:`check_equivalent` then proves on
seeded random inputs that the edited graph gives the original's outputs.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from extractor.models.catalog import Transform

BATCH_DIM = "batch"


def _set_dim_param(value_info: onnx.ValueInfoProto, axis: int, name: str) -> None:
    dim = value_info.type.tensor_type.shape.dim[axis]
    dim.ClearField("dim_value")
    dim.dim_param = name


def _drop_initializer_inputs(graph: onnx.GraphProto) -> None:
    """Old exporters list weights as graph inputs, which blocks constant folding."""
    initializer_names = {init.name for init in graph.initializer}
    real_inputs = [inp for inp in graph.input if inp.name not in initializer_names]
    del graph.input[:]
    graph.input.extend(real_inputs)


def _free_reshape_batch(graph: onnx.GraphProto) -> None:
    """Turn Reshape targets ``[1, ...]`` into ``[0, ...]`` (0 copies the input's batch)."""
    initializers = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in initializers:
            continue
        init = initializers[node.input[1]]
        shape = numpy_helper.to_array(init).copy()
        if shape.ndim == 1 and shape.size > 1 and shape[0] == 1:
            shape[0] = 0
            init.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), init.name))


def apply_transform(model: onnx.ModelProto, transform: Transform) -> onnx.ModelProto:
    """Return an edited copy of ``model``; the original is left untouched."""
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    if transform is Transform.NONE:
        return edited
    graph = edited.graph
    _drop_initializer_inputs(graph)
    # Intermediate shapes recorded at export time would contradict the freed dims.
    del graph.value_info[:]
    if transform is Transform.DYNAMIC_BATCH:
        _free_reshape_batch(graph)
        for value_info in (*graph.input, *graph.output):
            _set_dim_param(value_info, 0, BATCH_DIM)
    elif transform is Transform.DYNAMIC_SPATIAL:
        for value_info in graph.input:
            _set_dim_param(value_info, 2, "height")
            _set_dim_param(value_info, 3, "width")
        for value_info in graph.output:
            _set_dim_param(value_info, 1, "anchors")
    onnx.checker.check_model(edited)
    return edited


def check_equivalent(
    original: bytes,
    edited: bytes,
    transform: Transform,
    input_shape: tuple[int, ...],
    *,
    batch: int = 4,
    tolerance: float = 1e-3,
) -> float:
    """Run both graphs on seeded random inputs and return the largest output difference.

    For a batch edit the edited graph sees all ``batch`` inputs at once and the
    original one at a time; for a spatial edit both see the original size. Raises
    ``ValueError`` when the difference exceeds ``tolerance``.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    reference = ort.InferenceSession(original, options, providers=providers)
    candidate = ort.InferenceSession(edited, options, providers=providers)
    input_name = reference.get_inputs()[0].name
    rng = np.random.default_rng(0)
    samples = rng.uniform(-1.0, 1.0, size=(batch, *input_shape)).astype(np.float32)
    if transform is Transform.DYNAMIC_BATCH:
        expected = [
            np.concatenate(parts)
            for parts in zip(
                *(reference.run(None, {input_name: s[None]}) for s in samples), strict=True
            )
        ]
        actual = candidate.run(None, {input_name: samples})
    else:
        expected = reference.run(None, {input_name: samples[:1]})
        actual = candidate.run(None, {input_name: samples[:1]})
    worst = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(e))))
        for a, e in zip(actual, expected, strict=True)
    )
    if worst > tolerance:
        raise ValueError(f"edited graph differs from the original by {worst:.2e}")
    return worst
