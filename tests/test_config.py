"""Config: defaults, validation, EYESHIM_* parsing."""

from __future__ import annotations

from typing import Any

import pytest

from eyeshim.config import Config, parse_duration


def test_r29_defaults_are_the_rfc_recommendations() -> None:
    config = Config()
    assert config.resolution_delay == 0.050
    assert config.connection_attempt_delay == 0.250
    assert config.min_connection_attempt_delay == 0.100
    assert config.max_connection_attempt_delay == 2.0
    assert config.first_address_family_count == 1


def test_config_is_immutable_and_replace_validates() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.resolution_delay = 1  # type: ignore[misc]
    assert config.replace(resolution_delay=0.1).resolution_delay == 0.1
    with pytest.raises(ValueError, match="resolution_delay"):
        config.replace(resolution_delay=-1)


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"resolution_delay": "fast"}, TypeError, "resolution_delay must be a number"),
        ({"resolution_delay": float("nan")}, ValueError, "finite"),
        ({"first_address_family_count": 0}, ValueError, ">= 1"),
        ({"history": "yes"}, TypeError, "history must be a bool"),
        ({"min_connection_attempt_delay": 0.001}, ValueError, "10 ms"),
        ({"max_connection_attempt_delay": 0.05}, ValueError, "max_connection_attempt_delay"),
        ({"connection_attempt_delay": 3.0}, ValueError, "must lie between"),
        ({"policy": 42}, TypeError, "policy must be"),
        ({"resolver_threads": 0}, ValueError, "resolver_threads"),
    ],
)
def test_config_rejects_bad_values(changes: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Config(**changes)


def test_config_from_env() -> None:
    config = Config.from_env(
        {
            "EYESHIM_CONNECTION_ATTEMPT_DELAY": "300ms",
            "EYESHIM_RESOLUTION_DELAY": "0.02",
            "EYESHIM_HISTORY": "off",
            "EYESHIM_FIRST_ADDRESS_FAMILY_COUNT": "2",
            "EYESHIM_POLICY": "rfc6724",
            "UNRELATED": "x",
        }
    )
    assert config.connection_attempt_delay == pytest.approx(0.3)
    assert config.resolution_delay == pytest.approx(0.02)
    assert config.history is False
    assert config.first_address_family_count == 2
    assert config.policy == "rfc6724"


def test_config_from_env_names_the_bad_variable() -> None:
    with pytest.raises(ValueError, match=r"EYESHIM_RESOLUTION_DELAY='soon'.*250ms"):
        Config.from_env({"EYESHIM_RESOLUTION_DELAY": "soon"})
    with pytest.raises(ValueError, match="EYESHIM_HISTORY"):
        Config.from_env({"EYESHIM_HISTORY": "maybe"})
    with pytest.raises(ValueError, match="EYESHIM_MIN_CONNECTION_ATTEMPT_DELAY"):
        Config.from_env({"EYESHIM_MIN_CONNECTION_ATTEMPT_DELAY": "5ms"})


def test_keyword_overrides_beat_environment() -> None:
    config = Config.from_env({"EYESHIM_RESOLUTION_DELAY": "20ms"}, resolution_delay=0.07)
    assert config.resolution_delay == pytest.approx(0.07)


@pytest.mark.parametrize(
    ("text", "seconds"), [("250ms", 0.25), ("0.25s", 0.25), ("2", 2.0), (" 10MS ", 0.01)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_every_config_field_is_documented() -> None:
    import dataclasses
    import pathlib

    doc = (pathlib.Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    for field in dataclasses.fields(Config):
        assert f"`{field.name}`" in doc, field.name
        assert f"`EYESHIM_{field.name.upper()}`" in doc, field.name
