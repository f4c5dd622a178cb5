"""The one protobuf form of a template, shared by every service that sends one."""

from __future__ import annotations

import numpy as np

from facegate.v1 import common_pb2


def template_to_proto(model_id: str, vector: np.ndarray) -> common_pb2.Template:
    return common_pb2.Template(model_id=model_id, embedding=np.asarray(vector).ravel().tolist())
