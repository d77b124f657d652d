"""eyeshim.config: the declarations, and all that derives from them.

Run as a program (``python tests/test_config.py``) it rewrites the generated
tables of docs/configuration.md from the declarations.
"""

from __future__ import annotations

import copy
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from eyeshim.config import (
    DEFAULT_CONFIG,
    DEFAULT_INTEGRATIONS,
    INTEGRATIONS,
    SETTINGS,
    SWITCHES,
    Config,
    Setting,
    known_variables,
    parse_duration,
    read_variable,
    select_integrations,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


# -- Config: values and messages -----------------------------------------------------


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
        ({"resolver_idle_timeout": 1e10}, ValueError, "more cannot be used"),
        ({"history_size": 10**9}, ValueError, "more cannot be used"),
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


# -- the declaration is the one place ------------------------------------------------


def test_each_field_is_declared_once_and_annotated_for_type_checkers() -> None:
    # The annotation is what mypy knows of the attribute (dataclass_transform);
    # the declaration is what runs.  A declaration without an annotation would
    # be a field mypy cannot see.
    assert list(Config.__annotations__) == [setting.name for setting in SETTINGS]
    assert Config.__slots__ == tuple(setting.name for setting in SETTINGS)
    kinds = {
        "float": "DURATION",
        "int": "N",
        "bool": "",
        "PolicySetting": "POLICY",
        "ResolverSetting": "RESOLVER",
        "str": "FILE",
    }
    for setting in SETTINGS:
        assert setting.kind.metavar == kinds[Config.__annotations__[setting.name]], setting
        assert setting.doc and not setting.doc.endswith("."), setting
        assert getattr(DEFAULT_CONFIG, setting.name) == setting.default


def test_config_is_slotted_immutable_hashable_and_picklable() -> None:
    config = Config(resolution_delay=0.07, policy="rfc6724")
    assert not hasattr(config, "__dict__")
    with pytest.raises(AttributeError, match="cannot assign to field 'history'"):
        config.history = False  # type: ignore[misc]
    with pytest.raises(AttributeError):
        config.something_else = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        del config.history  # type: ignore[misc]
    assert config == Config(resolution_delay=0.07, policy="rfc6724")
    assert config != Config() and config != object()
    assert hash(config) == hash(Config(resolution_delay=0.07, policy="rfc6724"))
    assert {config, Config()} == {Config(), config}
    for copied in (
        pickle.loads(pickle.dumps(config)),
        copy.copy(config),
        copy.deepcopy(config),
    ):
        assert copied == config and type(copied) is Config
    assert repr(Config()).startswith(
        "Config(resolution_delay=0.05, connection_attempt_delay=0.25, "
    )
    assert eval(repr(config)) == config
    # Positional arguments in declaration order, as the dataclass took them.
    assert Config(0.02, 0.3).connection_attempt_delay == 0.3
    with pytest.raises(TypeError, match="multiple values"):
        Config(0.02, resolution_delay=0.03)
    with pytest.raises(TypeError, match="unexpected keyword argument 'no_such_field'"):
        Config(no_such_field=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        Config().replace(no_such_field=1)


def test_importing_config_is_cheap() -> None:
    heavy = ("dataclasses", "inspect", "typing", "logging", "eyeshim.patches", "socket")
    code = (
        "import sys; before = set(sys.modules); import eyeshim.config; "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules and m not in before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# -- one message for one mistake, whichever way it came in ---------------------------


def test_an_attempt_delay_below_the_minimum_says_why() -> None:
    with pytest.raises(ValueError) as keyword:
        Config(connection_attempt_delay=0.05)
    message = str(keyword.value)
    assert "min_connection_attempt_delay (100 ms)" in message
    assert "lower min_connection_attempt_delay as well" in message
    assert "10 ms" in message and "RFC 8305 §5" in message
    with pytest.raises(ValueError) as variable:
        Config.from_env({"EYESHIM_CONNECTION_ATTEMPT_DELAY": "50ms"})
    assert str(variable.value).startswith("EYESHIM_CONNECTION_ATTEMPT_DELAY must lie between")
    assert "got '50ms'" in str(variable.value)
    assert "lower EYESHIM_MIN_CONNECTION_ATTEMPT_DELAY as well" in str(variable.value)
    # Lowering the minimum too is enough, down to the floor.
    assert Config(connection_attempt_delay=0.05, min_connection_attempt_delay=0.05)
    with pytest.raises(ValueError, match="cannot go that low: it must be >= 10 ms"):
        Config(connection_attempt_delay=0.005)
    with pytest.raises(ValueError, match=r"^min_connection_attempt_delay must be >= 10 ms \("):
        Config(connection_attempt_delay=0.005, min_connection_attempt_delay=0.005)


def test_a_bad_variable_is_an_error_even_when_a_keyword_overrides_it() -> None:
    with pytest.raises(ValueError, match=r"^EYESHIM_HISTORY='maybe': "):
        Config.from_env({"EYESHIM_HISTORY": "maybe"}, history=False)
    # A keyword's value is shown as given, a variable's as typed.
    with pytest.raises(ValueError, match=r"^min_connection_attempt_delay must .*, got 0\.001$"):
        Config.from_env(
            {"EYESHIM_MIN_CONNECTION_ATTEMPT_DELAY": "200ms"}, min_connection_attempt_delay=0.001
        )


def test_bounds_are_checked_before_what_they_bound() -> None:
    # max < min is reported as such, not as an attempt delay out of a bad range.
    with pytest.raises(ValueError, match=r"^max_connection_attempt_delay must be >= min"):
        Config(max_connection_attempt_delay=0.05, connection_attempt_delay=0.05)


def test_read_variable_and_known_variables() -> None:
    assert read_variable("EYESHIM_HISTORY", {"EYESHIM_HISTORY": "off"}) is False
    assert read_variable("EYESHIM_ENABLED", {}) is None
    with pytest.raises(ValueError, match=r"^EYESHIM_VERBOSE='loud': expected one of"):
        read_variable("EYESHIM_VERBOSE", {"EYESHIM_VERBOSE": "loud"})
    with pytest.raises(KeyError):
        read_variable("EYESHIM_NO_SUCH_THING", {})
    names = known_variables()
    assert len(names) == len(set(names)) == len(SETTINGS) + len(SWITCHES)
    assert {"EYESHIM_ENABLED", "EYESHIM_STATS", "EYESHIM_POLICY"} <= set(names)


def test_every_variable_the_package_names_is_declared() -> None:
    # The one list a "did you mean" for misspelt EYESHIM_* names consults.
    package = Path(__file__).resolve().parent.parent / "eyeshim"
    named = set()
    for source in package.rglob("*.py"):
        named |= set(re.findall(r"EYESHIM_[A-Z0-9_]*[A-Z0-9]", source.read_text(encoding="utf-8")))
    assert named - set(known_variables()) == set()
    from eyeshim import events

    assert events.TRACE_VARIABLE in SWITCHES


def test_select_integrations() -> None:
    assert select_integrations({}) == DEFAULT_INTEGRATIONS
    # pip's TLS stage goes with pip.
    assert select_integrations({"EYESHIM_DISABLE": "pip"}) == (
        "socket",
        "urllib3",
        "https",
        "urllib3-https",
    )
    # pip's TLS stage goes with pip.
    everything = {"EYESHIM_INTEGRATIONS": "socket,urllib3,pip,https,urllib3-https,pip-https"}
    assert select_integrations({**everything, "EYESHIM_DISABLE": "pip"}) == (
        "socket",
        "urllib3",
        "https",
        "urllib3-https",
    )
    assert select_integrations(
        {"EYESHIM_INTEGRATIONS": "getaddrinfo, socket", "EYESHIM_DISABLE": "socket"}
    ) == ("getaddrinfo",)
    assert select_integrations({"EYESHIM_INTEGRATIONS": ""}) == ()
    with pytest.raises(ValueError, match=r"EYESHIM_DISABLE='sockets': unknown integration"):
        select_integrations({"EYESHIM_DISABLE": "sockets"})
    assert set(DEFAULT_INTEGRATIONS) <= set(INTEGRATIONS)


# -- docs/configuration.md: generated from the declarations --------------------------


def _meaning(setting: Setting) -> str:
    parts = [setting.doc + "."]
    bounds = [name for name in (setting.at_least, setting.at_most) if name]
    if len(bounds) == 2:
        parts.append(f"Lies between `{bounds[0]}` and `{bounds[1]}`.")
    elif setting.at_least:
        parts.append(f"At least `{setting.at_least}`.")
    if setting.why:
        parts.append(f"Never below `{setting.spell(setting.minimum)}`: {setting.why}.")
    if setting.details:
        parts.append(setting.details)
    return " ".join(parts)


def render_fields() -> List[str]:
    rows = [
        "| field / variable | default | `run` / `probe` option | meaning |",
        "|---|---|---|---|",
    ]
    for setting in SETTINGS:
        option = f"`{setting.flag}`" if setting.flag else ""
        rows.append(
            f"| `{setting.name}` / `{setting.variable}` | `{setting.spell(setting.default)}` "
            f"| {option} | {_meaning(setting)} |"
        )
    return rows


def render_switches() -> List[str]:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for switch in SWITCHES.values():
        rows.append(f"| `{switch.name}` | {switch.default} | {switch.doc} |")
    return rows


GENERATED: Dict[str, Callable[[], List[str]]] = {
    "fields": render_fields,
    "switches": render_switches,
}


def _regions(text: str) -> Dict[str, Any]:
    found = {}
    for name in GENERATED:
        match = re.search(
            rf"^<!-- generated: {name} .*?-->\n(.*?)^<!-- end of generated: {name} -->$",
            text,
            re.M | re.S,
        )
        assert match is not None, f"docs/configuration.md has no generated {name} table"
        found[name] = match
    return found


def regenerate(text: str) -> str:
    for name, match in sorted(_regions(text).items(), key=lambda item: -item[1].start(1)):
        body = "\n".join(GENERATED[name]()) + "\n"
        text = text[: match.start(1)] + body + text[match.end(1) :]
    return text


def test_the_configuration_doc_is_generated_from_the_declarations() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert text == regenerate(text), (
        "docs/configuration.md differs from eyeshim/config.py: run python tests/test_config.py"
    )
    for variable in known_variables():
        assert f"`{variable}`" in text, variable


if __name__ == "__main__":
    DOC.write_text(regenerate(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"rewrote the generated tables of {os.path.relpath(DOC)}")
