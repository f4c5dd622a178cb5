"""The ``facegate`` command line itself: help, version and where an API key comes from,
without models, a store or a running service."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from facegate.cli import API_KEY_VARIABLE, EXIT_CONFIG, api_key, build_parser, main


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                yield from _parsers(command)


def test_every_command_argument_and_option_is_described() -> None:
    undescribed = []
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help:
                undescribed.append(f"{parser.prog}: {action.metavar or action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                undescribed += [
                    f"{parser.prog} {command.dest}"
                    for command in action._choices_actions
                    if not command.help
                ]
    assert undescribed == []


def test_top_level_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    assert "models" in shown
    assert "FACEGATE_" in shown
    for markup in ("``", "`", ":func:", "::"):
        assert markup not in shown


def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"facegate {version('facegate')}\n"


def _bulk_args(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["bulk", "register", "--dir", "photos", *flags])


def test_api_key_comes_from_the_environment_unless_a_flag_gives_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(API_KEY_VARIABLE, "from-environment\n")
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    assert api_key(_bulk_args()) == "from-environment"
    assert api_key(_bulk_args("--api-key", "from-flag")) == "from-flag"
    assert api_key(_bulk_args("--api-key-file", str(key_file))) == "from-file"


def test_api_key_flag_and_file_are_one_or_the_other(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _bulk_args("--api-key", "k", "--api-key-file", str(tmp_path / "key"))
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("content", [None, " \n"], ids=["missing", "empty"])
def test_an_unusable_key_file_is_refused(tmp_path: Path, content: str | None) -> None:
    key_file = tmp_path / "key"
    if content is not None:
        key_file.write_text(content)
    with pytest.raises(ValueError, match="--api-key-file"):
        api_key(_bulk_args("--api-key-file", str(key_file)))


def test_bulk_register_without_a_key_says_where_to_put_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv(API_KEY_VARIABLE, raising=False)
    monkeypatch.setenv("FACEGATE_DATA_DIR", str(tmp_path))
    assert main(["bulk", "register", "--dir", str(tmp_path)]) == EXIT_CONFIG
    message = capsys.readouterr().err
    assert API_KEY_VARIABLE in message
    assert "--api-key-file" in message
