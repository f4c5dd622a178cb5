"""Settings: defaults, FACEGATE_* / FACEGATE_EXTRACTOR_* parsing, override precedence."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest

from facegate.settings import (
    ENV_PREFIX,
    ExtractorSettings,
    GatewaySettings,
    JobsSettings,
    MatcherSettings,
    RestSettings,
    Settings,
    TlsSettings,
    _from_env,
    default_data_dir,
)
from matcher.params import IndexParams


def test_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/xdg")
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.data_dir == Path("/xdg/facegate")
    assert settings.models == Path("/xdg/facegate/models")
    assert settings.extractor == ExtractorSettings()


def test_default_data_dir_without_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", "/home/someone")
    assert default_data_dir() == Path("/home/someone/.local/share/facegate")


def test_reads_os_environ_when_no_mapping_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGATE_EXTRACTOR_PORT", "6001")
    assert Settings.from_env().extractor_port == 6001


def test_top_level_variables() -> None:
    settings = Settings.from_env(
        {
            "FACEGATE_DATA_DIR": "/var/lib/facegate",
            "FACEGATE_MODEL_DIR": "/opt/models",
            "FACEGATE_HOST": "0.0.0.0",
            "FACEGATE_EXTRACTOR_PORT": " 6000 ",
            "FACEGATE_METRICS_PORT": "9100",
            "FACEGATE_GRPC_WORKERS": "4",
        }
    )
    assert settings.data_dir == Path("/var/lib/facegate")
    assert settings.model_dir == Path("/opt/models")
    assert settings.models == Path("/opt/models")
    assert settings.host == "0.0.0.0"
    assert (settings.extractor_port, settings.metrics_port, settings.grpc_workers) == (
        6000,
        9100,
        4,
    )


def test_extractor_variables() -> None:
    extractor = Settings.from_env(
        {
            "FACEGATE_EXTRACTOR_DETECTOR": "yunet-2023mar",
            "FACEGATE_EXTRACTOR_DETECTION_MAX_SIDE": "960",
            "FACEGATE_EXTRACTOR_DETECTION_THRESHOLD": "0.45",
            "FACEGATE_EXTRACTOR_PROVIDERS": "CUDAExecutionProvider, CPUExecutionProvider,",
            "FACEGATE_EXTRACTOR_MAX_BATCH": "16",
            "FACEGATE_EXTRACTOR_MAX_IMAGE_BYTES": "1048576",
        }
    ).extractor
    assert extractor.detector == "yunet-2023mar"
    assert extractor.detection_max_side == 960
    assert extractor.detection_threshold == 0.45
    assert isinstance(extractor.detection_threshold, float)
    assert extractor.providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert extractor.max_batch == 16
    assert extractor.max_image_bytes == 1 << 20
    # Untouched fields keep their defaults.
    assert extractor.recognizer == ExtractorSettings().recognizer
    assert extractor.max_faces == ExtractorSettings().max_faces


def test_empty_tuple_variable_means_empty() -> None:
    assert Settings.from_env({"FACEGATE_EXTRACTOR_PROVIDERS": " , "}).extractor.providers == ()


def test_every_field_has_a_variable() -> None:
    """Each field is reachable from the environment under its documented name."""
    sections: dict[str, type] = {
        "extractor": ExtractorSettings,
        "matcher": MatcherSettings,
        "gateway": GatewaySettings,
        "rest": RestSettings,
        "jobs": JobsSettings,
        "tls": TlsSettings,
    }
    env = {ENV_PREFIX + f.name.upper(): "1" for f in fields(Settings) if f.name not in sections}
    for name, section in sections.items():
        env |= {f"{ENV_PREFIX}{name.upper()}_{n.upper()}": "1" for n, _ in leaves(section())}
    settings = Settings.from_env(env)
    # "1" parses as every kind of field: str, int, float, bool, Path, tuple.
    parsed = ("1", 1, Path("1"), ("1",))
    for f in fields(Settings):
        if f.name not in sections:
            assert getattr(settings, f.name) in parsed, f.name
    for name in sections:
        for field_name, value in leaves(getattr(settings, name)):
            assert value in parsed, f"{name}.{field_name}"


def leaves(section: Any) -> Iterator[tuple[str, Any]]:
    """(name, value) of each field of a section, those of a nested group (read under the
    section's prefix, as ``MatcherSettings.index``) included."""
    for f in fields(section):
        value = getattr(section, f.name)
        if is_dataclass(value):
            yield from leaves(value)
        else:
            yield f.name, value


def test_matcher_variables_and_overrides() -> None:
    settings = Settings.from_env(
        {
            "FACEGATE_DATA_DIR": "/srv",
            "FACEGATE_MATCHER_PORT": "7000",
            "FACEGATE_MATCHER_SHARD_INDEX": "2",
            "FACEGATE_MATCHER_SHARD_COUNT": "3",
            "FACEGATE_MATCHER_EF_SEARCH": "128",
            "FACEGATE_MATCHER_BUILD_THREADS": "2",
        },
        matcher={"shard_count": 4, "build_threads": None},
    )
    assert settings.matcher_port == 7000
    assert (settings.matcher.shard_index, settings.matcher.shard_count) == (2, 4)
    assert settings.matcher.build_threads == 2
    # The index parameters keep their variable names: FACEGATE_MATCHER_<FIELD>.
    assert settings.matcher.index == IndexParams(ef_search=128)
    assert settings.matcher_dir == Path("/srv/matcher/shard-2")
    assert Settings.from_env({"FACEGATE_MATCHER_DATA_DIR": "/x"}).matcher_dir == Path("/x")
    assert Settings.from_env({}).matcher == MatcherSettings()


@dataclass(frozen=True)
class _Sample:
    flag: bool = False
    count: int = 1
    ratio: float = 0.5
    names: tuple[str, ...] = ()
    where: Path = Path("/default")
    maybe: Path | None = None
    text: str = "x"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        *[(raw, True) for raw in ("1", "true", "YES", "On")],
        *[(raw, False) for raw in ("0", "false", "No", "OFF")],
    ],
)
def test_booleans(raw: str, value: bool) -> None:
    assert _from_env(_Sample(flag=not value), {"T_FLAG": raw}, "T_").flag is value


def test_every_kind_of_field() -> None:
    sample = _from_env(
        _Sample(),
        {
            "T_COUNT": "-12",
            "T_RATIO": "1e-3",
            "T_NAMES": "a,b , c",
            "T_WHERE": "relative/dir",
            "T_MAYBE": "/m",
            "T_TEXT": "hello world",
            "OTHER_COUNT": "99",
        },
        "T_",
    )
    assert sample == _Sample(
        count=-12,
        ratio=0.001,
        names=("a", "b", "c"),
        where=Path("relative/dir"),
        maybe=Path("/m"),
        text="hello world",
    )


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("FACEGATE_EXTRACTOR_PORT", "fifty"),
        ("FACEGATE_GRPC_WORKERS", "4.5"),
        ("FACEGATE_METRICS_PORT", ""),
        ("FACEGATE_EXTRACTOR_MAX_BATCH", "32x"),
        ("FACEGATE_EXTRACTOR_DETECTION_THRESHOLD", "high"),
    ],
)
def test_invalid_values_name_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ValueError, match=f"{variable}={raw!r}"):
        Settings.from_env({variable: raw})


@pytest.mark.parametrize("raw", ["maybe", "", "2"])
def test_invalid_boolean_names_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="T_FLAG"):
        _from_env(_Sample(), {"T_FLAG": raw}, "T_")


def test_overrides_win_over_environment() -> None:
    env = {
        "FACEGATE_HOST": "10.0.0.1",
        "FACEGATE_EXTRACTOR_PORT": "6000",
        "FACEGATE_EXTRACTOR_MAX_BATCH": "8",
        "FACEGATE_EXTRACTOR_DETECTOR": "yunet-2023mar",
    }
    settings = Settings.from_env(
        env,
        host="127.0.0.2",
        extractor_port=None,
        model_dir=Path("/cli/models"),
        extractor={"max_batch": 4, "detector": None},
    )
    assert settings.host == "127.0.0.2"
    assert settings.extractor_port == 6000  # None = not given: the environment stays
    assert settings.model_dir == Path("/cli/models")
    assert settings.extractor.max_batch == 4
    assert settings.extractor.detector == "yunet-2023mar"


def test_overrides_do_not_leak_between_calls() -> None:
    overrides = {"extractor": {"max_batch": 2}}
    first = Settings.from_env({}, **overrides)
    second = Settings.from_env({}, **overrides)
    assert first.extractor.max_batch == second.extractor.max_batch == 2


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(TypeError):
        Settings.from_env({}, no_such_setting=1)
