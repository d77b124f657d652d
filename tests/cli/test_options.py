"""The configuration options (eyeshim/cli/options.py): one set, for run and probe alike."""

from __future__ import annotations

import argparse
import socket
from typing import Dict, List, Optional, Tuple

import pytest

from eyeshim.cli import probe, run
from eyeshim.cli.options import add_config_options
from eyeshim.config import SETTINGS, Config

CLEAN: Dict[str, str] = {}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_says(args: List[str], capsys: pytest.CaptureFixture[str]) -> Tuple[int, str]:
    """Exit status of 'eyeshim run ARGS -c pass' (0: it would start), and the error."""
    try:
        run.command_line([*args, "-c", "pass"], CLEAN)
    except SystemExit as exc:
        return int(exc.code or 0), capsys.readouterr().err.split("error: ", 1)[-1].strip()
    return 0, ""


def probe_says(args: List[str], capsys: pytest.CaptureFixture[str]) -> Tuple[int, str]:
    """0 when 'eyeshim probe' accepts ARGS (it then races a closed port), else 2
    and the error."""
    try:
        code = probe.main(["127.0.0.1", str(_closed_port()), *args], stdout=_Sink(), stderr=_Sink())
    except SystemExit as exc:
        return int(exc.code or 0), capsys.readouterr().err.split("error: ", 1)[-1].strip()
    assert code == probe.EXIT_FAILED
    return 0, ""


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _options(parser: argparse.ArgumentParser) -> Dict[str, Tuple[Optional[str], str]]:
    return {
        action.option_strings[0]: (action.metavar, action.help or "")
        for action in parser._actions  # argparse keeps them nowhere public
        if action.dest in {setting.name for setting in SETTINGS}
    }


def test_run_and_probe_have_the_same_configuration_options() -> None:
    expected = argparse.ArgumentParser()
    add_config_options(expected)
    options = _options(expected)
    assert set(options) == {s.flag for s in SETTINGS if s.flag}
    assert {"--attempt-delay", "--resolution-delay", "--no-history", "--policy"} <= set(options)
    for parser in (run._parser(), probe._parser()):
        assert _options(parser) == options


@pytest.mark.parametrize(
    "args",
    [
        ["--attempt-delay", "50ms"],  # below the default minimum: the minimum moves
        ["--attempt-delay", "3s"],  # above the default maximum: the maximum moves
        ["--attempt-delay", "5ms"],  # below the RFC floor: refused
        ["--attempt-delay", "soon"],
        # "=": probe has -4 and -6, so argparse reads a lone "-1" as an option
        ["--resolution-delay=-1"],
        ["--resolution-delay", "0"],
        ["--first-address-family-count", "0"],
        ["--first-address-family-count", "2"],
        ["--first-address-family-count", "two"],
        ["--policy", " "],
        ["--policy", "rfc6724"],
        ["--no-history"],
    ],
)
def test_run_and_probe_accept_and_refuse_the_same_values(
    args: List[str], capsys: pytest.CaptureFixture[str]
) -> None:
    ran, probed = run_says(args, capsys), probe_says(args, capsys)
    assert ran == probed
    assert ran[0] in (0, 2)
    if ran[0]:
        assert args[0].partition("=")[0] in ran[1] or "argument" in ran[1], ran


def test_an_attempt_delay_below_the_floor_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    code, message = run_says(["--attempt-delay", "5ms"], capsys)
    assert code == 2
    assert message == (
        "--attempt-delay must be >= 10 ms (RFC 8305 §5 keeps attempts at least 10 ms apart, "
        "R19), got '5ms'"
    )


def test_an_attempt_delay_moves_the_bounds_it_lies_between() -> None:
    _, env = run.command_line(["--attempt-delay", "50ms", "-c", "pass"], CLEAN)
    assert env["EYESHIM_CONNECTION_ATTEMPT_DELAY"] == "50ms"
    assert env["EYESHIM_MIN_CONNECTION_ATTEMPT_DELAY"] == "50ms"
    assert "EYESHIM_MAX_CONNECTION_ATTEMPT_DELAY" not in env
    config = Config.from_env(env)
    assert (config.connection_attempt_delay, config.min_connection_attempt_delay) == (0.05, 0.05)
    # A bound that admits the value already is left as the environment has it.
    _, env = run.command_line(
        ["--attempt-delay", "50ms", "-c", "pass"], {"EYESHIM_MIN_CONNECTION_ATTEMPT_DELAY": "20ms"}
    )
    assert env["EYESHIM_MIN_CONNECTION_ATTEMPT_DELAY"] == "20ms"


def test_a_bound_set_on_the_command_line_is_not_moved(capsys: pytest.CaptureFixture[str]) -> None:
    code, message = run_says(
        ["--set", "min_connection_attempt_delay=200ms", "--attempt-delay", "50ms"], capsys
    )
    assert code == 2
    assert message.startswith("--attempt-delay, --set min_connection_attempt_delay: ")
    assert "EYESHIM_CONNECTION_ATTEMPT_DELAY must lie between" in message
    assert "lower EYESHIM_MIN_CONNECTION_ATTEMPT_DELAY as well" in message
