"""The configuration options of ``eyeshim run`` and ``eyeshim probe``.

Both commands take the same options, derived from the field declarations of
:mod:`eyeshim.config` (those with a ``flag``): same spelling, same parser,
same checks, same help.  A value is parsed as its ``EYESHIM_*`` variable
would be and checked by the field's own declaration; the checks that
involve other fields are the configuration's.

One rule is the command line's own: an option for a field that other fields
bound (``--attempt-delay`` lies between the min and max attempt delays)
means "use this value", so a bound that would refuse it moves to admit it,
unless that bound was given on the command line too.  The bound's own limit
still holds: ``--attempt-delay 5ms`` is refused, because attempts are never
closer than 10 ms (RFC 8305 §5).
"""

from __future__ import annotations

import argparse
from typing import Any, Callable, Collection, Dict, NamedTuple

from ..config import SETTINGS, Setting, parse_duration

__all__ = ["Choice", "add_config_options", "config_choices", "duration"]

_BY_NAME = {setting.name: setting for setting in SETTINGS}


class Choice(NamedTuple):
    """A field's value as the command line gave it."""

    value: Any
    text: str  # as typed: what its EYESHIM_* variable would hold
    option: str  # the option that set it


def duration(text: str) -> float:
    """An option's duration (``--timeout``), spelled as the variables spell
    durations: ``5``, ``5s`` or ``500ms``; never negative."""
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a duration >= 0, got {text!r}")
    return value


def _parser_of(setting: Setting, option: str) -> Callable[[str], Choice]:
    def parse(text: str) -> Choice:
        try:
            return Choice(setting.parse(text), text, option)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _help(setting: Setting) -> str:
    # The doc is a sentence; help texts start in lower case ("RFC" stays).
    doc = setting.doc
    return doc[:1].lower() + doc[1:] if doc[1:2].islower() else doc


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """Add an option for every field that declares one."""
    for setting in SETTINGS:
        if setting.flag is None:
            continue
        if isinstance(setting.default, bool):
            value = not setting.default
            parser.add_argument(
                setting.flag,
                dest=setting.name,
                action="store_const",
                const=Choice(value, str(int(value)), setting.flag),
                help=f"turn {setting.name} {setting.spell(value)}; {setting.name}: "
                f"{_help(setting)} ({setting.variable}={int(value)})",
            )
        else:
            parser.add_argument(
                setting.flag,
                dest=setting.name,
                type=_parser_of(setting, setting.flag),
                metavar=setting.kind.metavar,
                help=f"{_help(setting)}; default {setting.spell(setting.default)} "
                f"({setting.variable})",
            )


def config_choices(
    options: argparse.Namespace,
    parser: argparse.ArgumentParser,
    current: Callable[[str], Any],
    fixed: Collection[str] = (),
) -> Dict[str, Choice]:
    """field -> the value the options give it, the bounds they move included.

    ``current(field)`` is the value the field would have without the options
    (from the environment, or the default); ``fixed`` names the fields the
    command line sets otherwise (``run --set``), which are not moved.  A value
    the field refuses is a usage error (``parser.error``, exit 2) naming the
    option.
    """
    chosen: Dict[str, Choice] = {
        setting.name: getattr(options, setting.name)
        for setting in SETTINGS
        if setting.flag is not None and getattr(options, setting.name, None) is not None
    }
    given = set(chosen) | set(fixed)
    for name, choice in list(chosen.items()):
        setting = _BY_NAME[name]
        low, high = setting.at_least, setting.at_most
        if low is not None and low not in given and choice.value < current(low):
            chosen[low] = choice
        if high is not None and high not in given and choice.value > current(high):
            chosen[high] = choice
    for name, choice in chosen.items():
        try:
            _BY_NAME[name].check(choice.value, choice.option, repr(choice.text))
        except (TypeError, ValueError) as exc:
            parser.error(str(exc))
    return chosen
