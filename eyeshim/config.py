"""Configuration: one immutable object, settable by keyword, ``EYESHIM_*`` and options.

Every tunable of the engine is a field of :class:`Config`, declared once, in
the class body below: its name, type, default, bounds, a one-line doc and,
optionally, the command-line option of ``eyeshim run`` and ``eyeshim probe``.
Everything else is derived from that declaration: the slots of the class,
validation (with one message for one mistake, whichever way the value came
in), the ``EYESHIM_<FIELD>`` variable and its parser, the options of both
commands (:mod:`eyeshim.cli.options`) and the tables of
docs/configuration.md (a test regenerates them and fails on a difference).

The environment variables that are not fields (switches such as
``EYESHIM_ENABLED``) are declared here too, in :data:`SWITCHES`, so that
:func:`known_variables` is the one list of every ``EYESHIM_*`` name, and so
is the choice of integrations (:func:`select_integrations`).

This module is imported at interpreter start-up by the drop-in hook, so it
imports nothing but ``os`` (which site has imported already): no
dataclasses (which pulls in inspect), no typing (type checkers see it under
``TYPE_CHECKING``), no logging, not even math.

RFC 8305 §8 asks that every value be configurable (checklist R29); the
defaults are the RFC's recommendations.
"""

from __future__ import annotations

import os

# Not ``from typing import TYPE_CHECKING``: importing typing costs
# milliseconds, and type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, ClassVar, Iterable, Mapping, Optional, TypeVar, Union

    # typing.dataclass_transform is 3.11+; mypy checks as 3.10 and ships the
    # stub of typing_extensions, which is never imported at run time.
    from typing_extensions import dataclass_transform

    PolicySetting = Union[str, Any]  # "auto" | "rfc6724" | a gai.conf path | a PolicyTable
    ResolverSetting = str  # "auto" | "system"
    _F = TypeVar("_F", bound="_Frozen")
else:

    def dataclass_transform(**_: object) -> object:
        return lambda cls: cls


__all__ = [
    "ATTEMPT_DELAY_FLOOR",
    "DEFAULT_CONFIG",
    "DEFAULT_INTEGRATIONS",
    "DISABLE_VARIABLE",
    "ENABLE_VARIABLE",
    "ENV_PREFIX",
    "INTEGRATIONS",
    "INTEGRATIONS_VARIABLE",
    "QUIET_VARIABLE",
    "SETTINGS",
    "STATS_VARIABLE",
    "STRICT_VARIABLE",
    "SWITCHES",
    "TLS_INTEGRATIONS",
    "TRACE_VARIABLE",
    "VERBOSE_VARIABLE",
    "Config",
    "Setting",
    "Switch",
    "check_environment",
    "get_config",
    "history_file_path",
    "known_integrations",
    "known_variables",
    "parse_bool",
    "parse_duration",
    "parse_integrations",
    "read_variable",
    "select_integrations",
    "set_config",
    "unknown_variables",
]

ENV_PREFIX = "EYESHIM_"

# RFC 8305 §5 floor: two attempts must never start closer together than this,
# whatever the configuration says.
ATTEMPT_DELAY_FLOOR = 0.010

#: The integrations ``install()`` knows: name -> the module of
#: ``eyeshim.patches`` (relative) whose ``make(name)`` builds its patch.
#: Declared here rather than in ``eyeshim.patches`` so that the names can be
#: checked at start-up without importing socket and threading.
INTEGRATIONS: dict[str, str] = {
    "socket": ".stdlib",
    "urllib3": ".urllib3",
    "pip": ".urllib3",
    "getaddrinfo": ".getaddrinfo",
    "https": ".https_stdlib",
    "urllib3-https": ".https_urllib3",
    "pip-https": ".https_urllib3",
}
#: Integrations that add to another's race (its TLS stage): disabling the
#: other disables them too.
BUILDS_ON: dict[str, str] = {"urllib3-https": "urllib3", "pip-https": "pip"}
#: Racing HTTPS through the TLS handshake (Happy Eyeballs v3's success rule): on by
#: default since the stacks' own test suites pass with them (docs/suites.md);
#: ``EYESHIM_DISABLE=https,urllib3-https,pip-https`` races HTTPS at TCP only.
TLS_INTEGRATIONS = ("https", "urllib3-https", "pip-https")
#: What ``install()`` and the environment select when nothing says otherwise.
DEFAULT_INTEGRATIONS = ("socket", "urllib3", "pip", *TLS_INTEGRATIONS)

# -- parsers: text (a variable, an option) -> value ---------------------------------


def _finite(value: float) -> bool:
    """math.isfinite without importing math (half a millisecond at start-up):
    infinity minus itself is NaN, and NaN equals nothing."""
    return value - value == 0


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def parse_bool(text: str) -> bool:
    """Parse a boolean the way environment variables usually spell it."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected one of 1/0, true/false, yes/no, on/off, got {text!r}")


def parse_duration(text: str) -> float:
    """Parse ``"250ms"``, ``"0.25s"`` or a bare ``"0.25"`` (seconds) into seconds."""
    raw = text.strip().lower()
    scale = 1.0
    if raw.endswith("ms"):
        raw, scale = raw[:-2], 0.001
    elif raw.endswith("s"):
        raw = raw[:-1]
    try:
        value = float(raw) * scale
    except ValueError:
        raise ValueError(
            f"expected a duration such as 250ms, 0.25s or 0.25 (seconds), got {text!r}"
        ) from None
    if not _finite(value):
        raise ValueError(f"expected a finite duration, got {text!r}")
    return value


def known_integrations(
    names: Iterable[str], allowed: Iterable[str], expected: str
) -> tuple[str, ...]:
    """``names`` without repeats, in order; a ValueError naming the unknown
    ones, then ``expected`` (what is allowed, worded for the caller's kind of
    input) and the allowed names."""
    allowed = tuple(allowed)
    out = tuple(dict.fromkeys(names))
    unknown = [name for name in out if name not in allowed]
    if unknown:
        raise ValueError(
            f"unknown integration(s) {', '.join(map(repr, unknown))}; "
            f"{expected}: {', '.join(allowed)}"
        )
    return out


def _integration_names(text: str, known: Iterable[str] = INTEGRATIONS) -> tuple[str, ...]:
    parts = (part.strip() for part in text.split(","))
    return known_integrations(
        (part for part in parts if part), known, "expected a comma-separated list of"
    )


def parse_integrations(variable: str, text: str, known: Iterable[str]) -> tuple[str, ...]:
    """Parse a comma-separated list of integration names (``EYESHIM_INTEGRATIONS``,
    ``EYESHIM_DISABLE``); unknown names raise ValueError naming the variable."""
    try:
        return _integration_names(text, known)
    except ValueError as exc:
        raise ValueError(f"{variable}={text!r}: {exc}") from None


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None


def _parse_policy(text: str) -> str:
    value = text.strip()
    if not value:
        raise ValueError("expected 'auto', 'rfc6724' or the path of a gai.conf file, got ''")
    if value not in ("auto", "rfc6724") and not os.path.isfile(value):
        # A missing table would silently become another order: say so where
        # the text is given (a variable, an option), not at the first race.
        raise ValueError(
            f"no file at {value!r}; expected 'auto', 'rfc6724' or the path of a gai.conf file"
        )
    return value


RESOLVERS = ("auto", "system")


def _parse_resolver(text: str) -> str:
    value = text.strip().lower()
    if value not in RESOLVERS:
        raise ValueError(f"expected one of {', '.join(RESOLVERS)}, got {text!r}")
    return value


def _seconds(value: float, space: str = " ") -> str:
    """A duration for people (``50 ms``, ``2 s``), or as a variable holds it
    with ``space=""`` (``50ms``, ``2s``)."""
    if 0 < abs(value) < 1:
        return f"{value * 1000:g}{space}ms"
    return f"{value:g}{space}s"


# -- kinds of field: parse, spell, check ---------------------------------------------


class _Kind:
    """What a field holds: how its text parses, how its value is spelled as
    text (docs, variables), what the options call it, and the type check."""

    __slots__ = ("check", "metavar", "parse", "spell")

    def __init__(
        self,
        parse: Callable[[str], Any],
        spell: Callable[[Any], str],
        metavar: str,
        check: Callable[[str, Any, str], None],
    ) -> None:
        self.parse = parse
        self.spell = spell
        self.metavar = metavar
        self.check = check  # (how the field is named, value, how the value is shown)


def _check_duration(name: str, value: Any, shown: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {shown}")
    if not _finite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {shown}")


def _check_count(name: str, value: Any, shown: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {shown}")


def _check_switch(name: str, value: Any, shown: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {shown}")


def _check_policy(name: str, value: Any, shown: str) -> None:
    if isinstance(value, str):
        if not value:
            raise ValueError(f"{name} must be 'auto', 'rfc6724' or a gai.conf path, got {shown}")
    elif not hasattr(value, "precedence"):
        raise TypeError(
            f"{name} must be 'auto', 'rfc6724', a gai.conf path or a PolicyTable, got {shown}"
        )


def _check_resolver(name: str, value: Any, shown: str) -> None:
    if value not in RESOLVERS:
        raise ValueError(f"{name} must be one of {', '.join(RESOLVERS)}, got {shown}")


def history_file_path(setting: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """The file a ``history_file`` setting names: ``auto`` is ``history.tsv``
    in eyeshim's directory of the user's cache (``$XDG_CACHE_HOME/eyeshim``,
    else ``~/.cache/eyeshim``); a path is itself."""
    if setting != "auto":
        return setting
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "eyeshim", "history.tsv")


def _parse_history_file(text: str) -> str:
    value = text.strip()
    lowered = value.lower()
    if lowered in _TRUE or lowered == "auto":
        return "auto"
    if lowered in _FALSE:
        return ""
    path = os.path.expanduser(value)
    if not os.path.isabs(path):
        # Every process must name the same file, whatever its working directory.
        raise ValueError(
            f"expected 1 (a file in the user's cache directory), 0, or an absolute path, "
            f"got {text!r}"
        )
    if not os.path.isdir(os.path.dirname(path)):
        raise ValueError(f"no directory {os.path.dirname(path)!r} for the history file {path!r}")
    return path


def _check_history_file(name: str, value: Any, shown: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str ('', 'auto' or an absolute path), got {shown}")
    if value not in ("", "auto") and not os.path.isabs(value):
        raise ValueError(f"{name} must be '', 'auto' or an absolute path, got {shown}")


_DURATION = _Kind(parse_duration, lambda v: _seconds(v, ""), "DURATION", _check_duration)
_COUNT = _Kind(_parse_int, str, "N", _check_count)
_SWITCH = _Kind(parse_bool, lambda v: "on" if v else "off", "", _check_switch)
_POLICY = _Kind(_parse_policy, str, "POLICY", _check_policy)
_RESOLVER = _Kind(_parse_resolver, str, "RESOLVER", _check_resolver)
_HISTORY_FILE = _Kind(_parse_history_file, lambda v: v or "off", "FILE", _check_history_file)


class Setting:
    """The declaration of one :class:`Config` field (made by the field
    functions below; ``name`` is filled in from the class body)."""

    __slots__ = (
        "at_least",
        "at_most",
        "default",
        "details",
        "doc",
        "flag",
        "kind",
        "maximum",
        "minimum",
        "name",
        "why",
    )

    def __init__(
        self,
        kind: _Kind,
        default: Any,
        doc: str,
        details: str,
        flag: Optional[str],
        minimum: Optional[float] = None,
        why: str = "",
        at_least: Optional[str] = None,
        at_most: Optional[str] = None,
        maximum: Optional[float] = None,
    ) -> None:
        self.name = ""  # the attribute's, set by the class that declares it
        self.kind, self.default = kind, default
        # ``doc``: one line, for ``--help`` and the first sentence in the docs;
        # ``details``: more, for docs/configuration.md only.
        self.doc, self.details = doc, details
        # The option of ``eyeshim run`` and ``eyeshim probe``, if any.  For a
        # boolean field, the option sets the opposite of the default.
        self.flag = flag
        # A fixed lower bound and why (the message says it); fields bounding this one.
        self.minimum, self.why = minimum, why
        self.at_least, self.at_most = at_least, at_most
        # A fixed upper bound: what the code can actually use (a socket or
        # thread wait rejects more; a table bigger than that is a mistake).
        self.maximum = maximum

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def parse(self, text: str) -> Any:
        """The value of ``text`` (ValueError saying what is accepted); bounds
        are checked with the whole configuration."""
        return self.kind.parse(text)

    def spell(self, value: Any) -> str:
        """``value`` as the text a variable would hold (``250ms``, ``on``)."""
        return self.kind.spell(value)

    def check(self, value: Any, name: Optional[str] = None, shown: Optional[str] = None) -> None:
        """Raise TypeError or ValueError unless this field accepts ``value``
        on its own (the fields that bound it are checked by Config); the
        message calls the field ``name`` and shows the value as ``shown``."""
        name = self.name if name is None else name
        shown = repr(value) if shown is None else shown
        self.kind.check(name, value, shown)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{name} must be {_at_least(self)}, got {shown}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(
                f"{name} must be <= {_show(self, self.maximum)} (more cannot be used), got {shown}"
            )

    def __repr__(self) -> str:
        return f"<Setting {self.name}={self.default!r}>"


# The field functions (a dataclass's field(), one per kind): what each
# returns is the declaration, typed as the field's value so that mypy checks
# the default against the annotation, and the annotation is what mypy knows
# of the attribute.  ``default`` must be given by keyword (PEP 681).


#: The longest duration any knob takes: a day.  Waits (select, poll, a
#: thread's condition) refuse about 24.8 days, and no delay or lifetime of a
#: DNS answer, an RTT or a failure is useful beyond a day.
MAX_DURATION = 86400.0
#: The largest count any knob takes (threads, table sizes).
MAX_COUNT = 1_000_000


def _declare(setting: Setting) -> Any:
    return setting


def seconds_field(
    *,
    default: float,
    doc: str,
    details: str = "",
    flag: Optional[str] = None,
    minimum: float = 0.0,
    why: str = "",
    at_least: Optional[str] = None,
    at_most: Optional[str] = None,
    maximum: float = MAX_DURATION,
) -> float:
    """A duration in seconds (``250ms``, ``0.25s``, ``0.25``), between
    ``minimum`` and ``maximum``."""
    value: float = _declare(
        Setting(_DURATION, default, doc, details, flag, minimum, why, at_least, at_most, maximum)
    )
    return value


def count_field(
    *,
    default: int,
    doc: str,
    details: str = "",
    flag: Optional[str] = None,
    maximum: int = MAX_COUNT,
) -> int:
    """A whole number between 1 and ``maximum``."""
    value: int = _declare(Setting(_COUNT, default, doc, details, flag, 1, maximum=maximum))
    return value


def switch_field(*, default: bool, doc: str, details: str = "", flag: Optional[str] = None) -> bool:
    """On or off (``1/0``, ``true/false``, ``yes/no``, ``on/off``)."""
    value: bool = _declare(Setting(_SWITCH, default, doc, details, flag))
    return value


def policy_field(
    *, default: str, doc: str, details: str = "", flag: Optional[str] = None
) -> PolicySetting:
    """An RFC 6724 policy table: a name, a gai.conf path or a PolicyTable."""
    return _declare(Setting(_POLICY, default, doc, details, flag))


def resolver_field(
    *, default: str, doc: str, details: str = "", flag: Optional[str] = None
) -> ResolverSetting:
    """Which resolver: ``auto`` or ``system``."""
    return _declare(Setting(_RESOLVER, default, doc, details, flag))  # type: ignore[no-any-return]


def history_file_field(
    *, default: str, doc: str, details: str = "", flag: Optional[str] = None
) -> str:
    """Off (``""``), ``"auto"`` (the user's cache directory) or an absolute path."""
    value: str = _declare(Setting(_HISTORY_FILE, default, doc, details, flag))
    return value


# -- the class machinery --------------------------------------------------------------


class _Fields(type):
    """Turns the declarations of a class body into slots and ``_settings``."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> _Fields:
        declared = []
        for key, value in list(namespace.items()):
            if isinstance(value, Setting):
                value.name = key
                declared.append(value)
                del namespace[key]  # a slot of that name takes its place
        inherited: tuple[Setting, ...] = ()
        for base in bases:
            inherited += getattr(base, "_settings", ())
        namespace["__slots__"] = tuple(setting.name for setting in declared)
        namespace["_settings"] = inherited + tuple(declared)
        return super().__new__(mcls, name, bases, namespace)


def _repr_value(name: str, value: Any) -> str:
    return repr(value)


def _restore(cls: type[_Frozen], values: dict[str, Any]) -> _Frozen:
    """Unpickle (and copy): through the constructor, so the checks run."""
    return cls(**values)


# Why this shape: mypy must see each attribute's type, and the class must
# not need dataclasses at run time.  dataclass_transform (PEP 681) tells
# mypy that subclasses of _Frozen behave like frozen dataclasses whose
# fields are declared with the functions above: it synthesizes a typed
# __init__ from the annotations (unknown keywords and wrong types are
# errors), makes the attributes read-only, and checks each default against
# its annotation.  At run time the metaclass turns the same declarations
# into slots, and _Frozen supplies __init__, replace, __eq__, __hash__,
# __repr__ and pickling, generically over ``_settings``.  So a field is one
# statement of the class body: nothing to keep in step, for mypy or at run time.
@dataclass_transform(
    frozen_default=True,
    field_specifiers=(
        seconds_field,
        count_field,
        switch_field,
        policy_field,
        resolver_field,
        history_file_field,
    ),
)
class _Frozen(metaclass=_Fields):
    __slots__ = ()
    _settings: ClassVar[tuple[Setting, ...]]

    # Hidden from type checkers: they take the typed __init__ that
    # dataclass_transform derives from the declarations.
    if not TYPE_CHECKING:

        def __init__(self, *args: Any, **values: Any) -> None:
            settings = self._settings
            if len(args) > len(settings):
                raise TypeError(
                    f"{type(self).__qualname__}() takes {len(settings)} positional "
                    f"arguments but {len(args)} were given"
                )
            for setting, value in zip(settings, args):
                if setting.name in values:
                    raise TypeError(
                        f"{type(self).__qualname__}() got multiple values for "
                        f"argument {setting.name!r}"
                    )
                values[setting.name] = value
            self._set(values, str, _repr_value)

        def __setattr__(self, name: str, value: Any) -> None:
            # dataclasses.FrozenInstanceError is an AttributeError too.
            raise AttributeError(f"cannot assign to field {name!r}")

        def __delattr__(self, name: str) -> None:
            raise AttributeError(f"cannot delete field {name!r}")

    def _set(
        self,
        changes: dict[str, Any],
        name_of: Callable[[str], str],
        shown: Callable[[str, Any], str],
    ) -> None:
        """Fill every slot from ``changes`` and the defaults, after checking.

        Messages name a field with ``name_of(field)`` and show the value
        given for it with ``shown(field, value)``, so that each caller
        (keywords, variables, options) reads them in its own words.
        """
        settings = self._settings
        values = {setting.name: setting.default for setting in settings}
        for name in changes:
            if name not in values:
                raise TypeError(
                    f"{type(self).__qualname__}.__init__() got an unexpected keyword "
                    f"argument {name!r}"
                )
        values.update(changes)
        _validate(settings, values, name_of, lambda name: shown(name, values[name]))
        for setting in settings:
            object.__setattr__(self, setting.name, values[setting.name])

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, setting.name) for setting in self._settings)

    def _as_dict(self) -> dict[str, Any]:
        return {setting.name: getattr(self, setting.name) for setting in self._settings}

    def replace(self: _F, **changes: Any) -> _F:
        """Return a copy with ``changes`` applied (validated like the constructor)."""
        values = self._as_dict()
        values.update(changes)
        return type(self)(**values)

    __replace__ = replace  # copy.replace() (3.13)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, _Frozen)
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._as_dict().items())
        return f"{type(self).__qualname__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self._as_dict()))


def _validate(
    settings: tuple[Setting, ...],
    values: dict[str, Any],
    name_of: Callable[[str], str],
    shown: Callable[[str], str],
) -> None:
    """Check ``values`` against the declarations; TypeError / ValueError."""
    for setting in settings:
        setting.check(values[setting.name], name_of(setting.name), shown(setting.name))
    by_name = {setting.name: setting for setting in settings}
    checked: set[str] = set()

    def relations(setting: Setting) -> None:
        # The fields bounding this one are checked first, so a message never
        # shows a range that is itself wrong.
        if setting.name in checked:
            return
        checked.add(setting.name)
        low = by_name[setting.at_least] if setting.at_least else None
        high = by_name[setting.at_most] if setting.at_most else None
        for bound in (low, high):
            if bound is not None:
                relations(bound)
        value = values[setting.name]
        below = low is not None and value < values[low.name]
        above = high is not None and value > values[high.name]
        if not (below or above):
            return
        if low is not None and high is not None:
            rule = f"lie between {_named(low, values, name_of)} and {_named(high, values, name_of)}"
        elif low is not None:
            rule = f"be >= {_named(low, values, name_of)}"
        else:
            assert high is not None
            rule = f"be <= {_named(high, values, name_of)}"
        problem = f"{name_of(setting.name)} must {rule}, got {shown(setting.name)}"
        if below and low is not None:
            if low.minimum is not None and value < low.minimum:
                problem += f"; {name_of(low.name)} cannot go that low: it must be {_at_least(low)}"
            elif low.minimum is not None:
                problem += (
                    f"; lower {name_of(low.name)} as well ({_at_least(low, 'no lower than ')})"
                )
            else:
                problem += f"; lower {name_of(low.name)} as well"
        elif above and high is not None:
            problem += f"; raise {name_of(high.name)} as well"
        raise ValueError(problem)

    for setting in settings:
        relations(setting)


def _show(setting: Setting, value: Any) -> str:
    return _seconds(value) if setting.kind is _DURATION else repr(value)


def _named(setting: Setting, values: Mapping[str, Any], name_of: Callable[[str], str]) -> str:
    return f"{name_of(setting.name)} ({_show(setting, values[setting.name])})"


def _at_least(setting: Setting, prefix: str = ">= ") -> str:
    """The fixed bound in words: ``>= 10 ms (why)``; with another prefix,
    ``no lower than 10 ms: why``."""
    assert setting.minimum is not None
    text = prefix + _show(setting, setting.minimum)
    if not setting.why:
        return text
    return f"{text} ({setting.why})" if prefix == ">= " else f"{text}: {setting.why}"


# -- the configuration -----------------------------------------------------------------


class Config(_Frozen):
    """Tunables of the Happy Eyeballs engine (RFC 8305 §8 defaults).

    Durations are in seconds.  Instances are immutable (and hashable,
    comparable, picklable); derive a variant with :meth:`replace`.  Each
    field below is the one declaration of that knob (see the module doc).
    """

    resolution_delay: float = seconds_field(
        default=0.050,
        flag="--resolution-delay",
        doc="After A answered first, how long to wait for AAAA before connecting over IPv4 "
        "(RFC 8305 §3, R4)",
        details="A negative AAAA ends the wait early.",
    )
    connection_attempt_delay: float = seconds_field(
        default=0.250,
        flag="--attempt-delay",
        at_least="min_connection_attempt_delay",
        at_most="max_connection_attempt_delay",
        doc="Delay before the next attempt when the history has no RTT for the address "
        "being tried (§5, R18)",
        details="The command-line option moves them to admit its value.",
    )
    min_connection_attempt_delay: float = seconds_field(
        default=0.100,
        minimum=ATTEMPT_DELAY_FLOOR,
        why="RFC 8305 §5 keeps attempts at least 10 ms apart, R19",
        doc="Lower bound of the RTT-derived delay (R20)",
    )
    max_connection_attempt_delay: float = seconds_field(
        default=2.0,
        at_least="min_connection_attempt_delay",
        doc="Upper bound of the RTT-derived delay (R21)",
    )
    first_address_family_count: int = count_field(
        default=1,
        flag="--first-address-family-count",
        doc="Addresses of the preferred family tried before the first of the other family "
        "(§4, R13)",
    )
    history: bool = switch_field(
        default=True,
        flag="--no-history",
        doc="Remember per-address connect times and failures, to sort and to pace the next "
        "races (R10-R12)",
    )
    history_size: int = count_field(
        default=1024,
        doc="Addresses remembered; the least recently used are forgotten first",
    )
    history_failure_ttl: float = seconds_field(
        default=600.0,
        doc="How long a failed (or beaten) address stays at the back of the list",
    )
    history_rtt_ttl: float = seconds_field(default=600.0, doc="How long a measured RTT stays valid")
    history_file: str = history_file_field(
        default="",
        flag="--history-file",
        doc="Share what failed with the user's other processes through a small file: 1 (in the "
        "user's cache directory), an absolute path, or 0 (off)",
        details="Off by default. On, a new process starts with what recent ones learnt "
        "(addresses that timed out or were unreachable, ports that refused, families dead for "
        "a name), so the second `pip install` on a network with broken IPv6 goes straight to "
        "IPv4. `1` is `$XDG_CACHE_HOME/eyeshim/history.tsv` (else `~/.cache/eyeshim/...`). "
        "Read at the first race that uses the history; written only when a race learnt "
        "something; entries expire with `history_failure_ttl`. See docs/deploying.md.",
    )
    policy: PolicySetting = policy_field(
        default="auto",
        flag="--policy",
        doc="RFC 6724 policy table: auto, rfc6724 or the path of a gai.conf file",
        details="`auto`: `/etc/gai.conf` when present, read as glibc reads it, so eyeshim "
        "prefers what `getaddrinfo` would; the RFC 6724 table when there is no file. "
        "`rfc6724`: the RFC table, whatever the file says. A path: a gai.conf-format file "
        "(read like `auto`). In Python, also a `eyeshim.sorting.PolicyTable`. "
        "See docs/sorting.md.",
    )
    resolver: ResolverSetting = resolver_field(
        default="auto",
        flag="--resolver",
        doc="Name resolution: auto (eyeshim's stub resolver where it provably answers as "
        "getaddrinfo would, else getaddrinfo on threads) or system (always getaddrinfo)",
        details="`auto` uses the stub resolver, which sends the AAAA and A queries itself "
        "on the race's own sockets (no thread), when glibc is the C library, "
        "`socket.getaddrinfo` is the stdlib's own, the `hosts:` line of `/etc/nsswitch.conf` "
        "has only services it implements and `/etc/resolv.conf` only options it implements; "
        "names under `.local` (mdns) and the host's own names (myhostname) still go to "
        "getaddrinfo. `eyeshim status` and `eyeshim probe` say which one a name gets, and "
        'why. See docs/design.md, "Which resolver, when".',
    )
    resolver_threads: int = count_field(
        default=8,
        maximum=256,
        doc="Upper bound on DNS threads running lookups a race still waits for",
        details="Lookups beyond it wait for a free thread.  A lookup every race has given "
        "up on stops counting against it (getaddrinfo cannot be cancelled); a hard cap of four "
        "times the bound still limits threads when DNS hangs for everyone.",
    )
    resolver_idle_timeout: float = seconds_field(
        default=0.0,
        maximum=60.0,
        doc="How long a DNS thread waits for more work before it exits",
        details="0 (the default): a thread exits as soon as its lookup is done, so no "
        "thread outlives its work, and fork() right after a call waits until those "
        "threads are gone.  A few seconds keeps threads warm for programs that "
        "connect in bursts and never fork.",
    )
    dns_cache: bool = switch_field(
        default=False,
        doc="Cache per-family DNS answers in the process, so a burst of connections to one "
        "host resolves once per family per lifetime",
        details="Off by default. Answers of the stub resolver are kept for their DNS TTL "
        "(within the bounds below); getaddrinfo reports no TTL, so its answers are kept "
        "for `dns_cache_ttl`.",
    )
    dns_cache_ttl: float = seconds_field(
        default=30.0,
        doc="Lifetime of a cached answer whose TTL is unknown (getaddrinfo's)",
        details="The default is the JDK's for `networkaddress.cache.ttl`.",
    )
    dns_cache_min_ttl: float = seconds_field(
        default=0.0,
        at_most="dns_cache_max_ttl",
        doc="Shortest time an answer with a DNS TTL is kept",
    )
    dns_cache_max_ttl: float = seconds_field(
        default=300.0,
        doc="Longest time an answer with a DNS TTL is kept (negative answers too)",
    )
    dns_cache_stale: float = seconds_field(
        default=1.0,
        maximum=60.0,
        doc="How long past its TTL an answer may still be used while one lookup refreshes it",
        details="Stub resolver only. `0`: an expired answer is never used.",
    )
    dns_cache_negative_ttl: float = seconds_field(
        default=10.0,
        doc="Lifetime of a cached failure without an SOA to size it (SERVFAIL, timeout; "
        "any failure from getaddrinfo)",
        details="A negative answer of the stub resolver (NXDOMAIN, NODATA) is kept for the "
        "SOA minimum its server sent (RFC 2308), within the TTL bounds. `0` caches none.",
    )
    dns_cache_size: int = count_field(
        default=1024,
        doc="Answers kept, per (name, port, family); least recently used first out",
    )
    dns_cache_rotate: bool = switch_field(
        default=True,
        doc="Each use of a cached answer hands out the list rotated by one more place",
        details="Connections then spread over round-robin servers instead of all picking "
        "the first (seed article 004). Off: every use sees the DNS order.",
    )
    nat64: bool = switch_field(
        default=True,
        doc="On an IPv6-only network, reach IPv4 literals through NAT64 (RFC 8305 §7)",
        details='When connecting to an IPv4 literal fails with "network unreachable", '
        "discover the NAT64 prefix (`ipv4only.arpa`, RFC 7050) and race the synthesized "
        "IPv6 addresses (RFC 6052). Never triggers on hosts with IPv4.",
    )
    nat64_prefix_ttl: float = seconds_field(
        default=600.0,
        doc="How long a discovered NAT64 prefix is used before it is discovered again",
        details="It is discovered sooner when the IPv6 source address changes.",
    )

    @classmethod
    def from_env(
        cls,
        environ: Optional[Mapping[str, str]] = None,
        base: Optional[Config] = None,
        **overrides: Any,
    ) -> Config:
        """Build a config from ``EYESHIM_<FIELD>`` variables, then ``overrides``.

        A malformed variable raises ``ValueError`` naming the variable, its
        value and the accepted form; so does a value out of bounds, in the
        names of the variables (keywords are named as fields).
        """
        env = os.environ if environ is None else environ
        start = base if base is not None else cls()
        values = start._as_dict()
        texts: dict[str, str] = {}
        for setting in cls._settings:
            raw = env.get(setting.variable)
            if raw is not None:  # parsed even when overridden: a bad variable is an error
                values[setting.name] = _parse_variable(setting.variable, setting.parse, raw)
                texts[setting.name] = raw
        values.update(overrides)
        by_name = {setting.name: setting for setting in cls._settings}

        def name_of(name: str) -> str:
            return name if name in overrides else by_name[name].variable

        def shown(name: str, value: Any) -> str:
            # A variable's value as it was given: "got '5ms'", not "got 0.005".
            return repr(value if name in overrides else texts.get(name, value))

        config = cls.__new__(cls)
        config._set(values, name_of, shown)
        return config


def _parse_variable(variable: str, parse: Callable[[str], Any], raw: str) -> Any:
    try:
        return parse(raw)
    except ValueError as exc:
        raise ValueError(f"{variable}={raw!r}: {exc}") from None


SETTINGS: tuple[Setting, ...] = Config._settings
DEFAULT_CONFIG = Config()


# The process-wide configuration: what a call without ``config=`` uses and
# what ``install()`` sets.  It lives here, not in the engine, so that
# installing the shims does not load the engine: that happens at the first
# connection.  Replacing one reference is atomic; no lock is needed.
_current: Config = DEFAULT_CONFIG


def get_config() -> Config:
    """The configuration used when a call passes none."""
    return _current


def set_config(config: Config) -> None:
    """Make ``config`` the process-wide default (``install()`` calls this)."""
    global _current
    if not isinstance(config, Config):
        raise TypeError(f"expected an eyeshim.Config, got {config!r}")
    _current = config


# -- the variables that are not fields -------------------------------------------------


class Switch:
    """An ``EYESHIM_*`` variable that is not a :class:`Config` field: it says
    whether and where eyeshim installs, and what it reports."""

    __slots__ = ("default", "doc", "name", "parse")

    def __init__(self, name: str, default: str, parse: Callable[[str], Any], doc: str) -> None:
        self.name = name
        #: What being unset means, in words (for the docs).
        self.default = default
        #: text -> value; ValueError saying what is accepted.
        self.parse = parse
        self.doc = doc

    def __repr__(self) -> str:
        return f"<Switch {self.name}>"


#: Every switch, by name, in the order of the docs.
SWITCHES: dict[str, Switch] = {}


def _switch(name: str, default: str, parse: Callable[[str], Any], doc: str) -> str:
    SWITCHES[name] = Switch(name, default, parse, doc)
    return name


#: Gate for the sitecustomize hook (PYTHONPATH leaks into every child, so the
#: hook must do nothing unless asked) and off switch for the .pth hook.
ENABLE_VARIABLE = _switch(
    "EYESHIM_ENABLED",
    "unset",
    parse_bool,
    "`1` turns the sitecustomize drop-in on (what `eyeshim run` sets); `0` switches every "
    "hook off, the `.pth` switch of `eyeshim enable` included. A malformed value warns once "
    "and leaves the interpreter stock.",
)
INTEGRATIONS_VARIABLE = _switch(
    "EYESHIM_INTEGRATIONS",
    "`" + ",".join(DEFAULT_INTEGRATIONS) + "`",
    _integration_names,
    "Comma list of integrations to install, replacing the default set; add `getaddrinfo` "
    "for the opt-in re-sorting.  `https,urllib3-https,pip-https` race HTTPS through the TLS "
    "handshake (the last two on top of `urllib3` and `pip`).",
)
DISABLE_VARIABLE = _switch(
    "EYESHIM_DISABLE",
    "unset",
    _integration_names,
    "Comma list of integrations removed from that set (`urllib3` and `pip` take their "
    "`-https` TLS stage with them).",
)
VERBOSE_VARIABLE = _switch(
    "EYESHIM_VERBOSE",
    "unset",
    parse_bool,
    "`1`: log eyeshim's decisions and every race event to stderr (the `eyeshim` logger at DEBUG).",
)
TRACE_VARIABLE = _switch(
    "EYESHIM_TRACE",
    "unset",
    parse_bool,
    "`1`: one DEBUG line per race event on the `eyeshim` logger, where the program's own "
    "logging shows it (`EYESHIM_VERBOSE` implies it, on stderr). A root logger at DEBUG "
    "does not turn it on.",
)
STATS_VARIABLE = _switch(
    "EYESHIM_STATS",
    "unset",
    str,
    "At exit, each process reports its race counters: `-` prints one line to stderr; a path "
    "gets one JSON line appended per process, which `eyeshim status --stats FILE` sums.",
)


STRICT_VARIABLE = _switch(
    "EYESHIM_STRICT",
    "unset",
    parse_bool,
    "`1`: a start-up problem (a bad or unknown `EYESHIM_*` variable, a missing policy file) "
    "stops the interpreter with its message and exit status 78, for CI pipelines that want "
    "misconfiguration to fail. Unset, the interpreter warns and starts stock.",
)
QUIET_VARIABLE = _switch(
    "EYESHIM_QUIET",
    "unset",
    parse_bool,
    "`1`: interpreters that inherit the environment but cannot load eyeshim (another Python, "
    "another venv) say nothing about it; by default they print one `eyeshim: disabled: cannot "
    "load eyeshim` line. Interpreters that have eyeshim still report bad settings.",
)


def known_variables() -> tuple[str, ...]:
    """Every ``EYESHIM_*`` name eyeshim reads: the fields', then the switches."""
    return tuple(setting.variable for setting in SETTINGS) + tuple(SWITCHES)


def read_variable(name: str, environ: Optional[Mapping[str, str]] = None) -> Any:
    """The parsed value of the variable ``name`` (a field's or a switch), or
    None when it is unset; a malformed value raises ValueError naming the
    variable, its value and what is accepted."""
    switch = SWITCHES.get(name)
    if switch is not None:
        parse = switch.parse
    else:
        setting = next((s for s in SETTINGS if s.variable == name), None)
        if setting is None:
            raise KeyError(f"{name} is not a variable of eyeshim")
        parse = setting.parse
    raw = (os.environ if environ is None else environ).get(name)
    return None if raw is None else _parse_variable(name, parse, raw)


def select_integrations(environ: Optional[Mapping[str, str]] = None) -> tuple[str, ...]:
    """The integrations the environment selects: ``EYESHIM_INTEGRATIONS`` (or
    the default set) less ``EYESHIM_DISABLE``.  ValueError names the variable."""
    env = os.environ if environ is None else environ
    chosen = read_variable(INTEGRATIONS_VARIABLE, env)
    names: tuple[str, ...] = DEFAULT_INTEGRATIONS if chosen is None else chosen
    disabled = read_variable(DISABLE_VARIABLE, env) or ()
    return tuple(
        name for name in names if name not in disabled and BUILDS_ON.get(name) not in disabled
    )


def unknown_variables(environ: Optional[Mapping[str, str]] = None) -> list[str]:
    """A message for each ``EYESHIM_*`` name that eyeshim does not read,
    with the nearest known name when one is close ("did you mean")."""
    env = os.environ if environ is None else environ
    known = known_variables()
    unknown = sorted(name for name in env if name.startswith(ENV_PREFIX) and name not in known)
    if not unknown:
        return []
    import difflib  # only now: it costs a few milliseconds at start-up

    messages = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else "; 'eyeshim status' lists the known ones"
        messages.append(f"{name} is not a variable of eyeshim (ignored){hint}")
    return messages


class Checked:
    """What :func:`check_environment` found: the configuration and the
    integrations the environment selects (None when they cannot be built),
    the problems that keep eyeshim off, and warnings that do not."""

    __slots__ = ("config", "integrations", "problems", "warnings")

    def __init__(self) -> None:
        self.config: Optional[Config] = None
        self.integrations: Optional[tuple[str, ...]] = None
        self.problems: list[str] = []
        self.warnings: list[str] = []


def check_environment(environ: Optional[Mapping[str, str]] = None) -> Checked:
    """Validate every ``EYESHIM_*`` variable at once, as the drop-in does at
    start-up and ``eyeshim status`` reports: each malformed or out-of-bounds
    value is a problem naming the variable, the value and what is allowed
    (all of them, not only the first), and so is a missing policy file;
    unknown ``EYESHIM_*`` names are warnings with a "did you mean"."""
    env = os.environ if environ is None else environ
    checked = Checked()
    problems = checked.problems
    for switch in SWITCHES.values():
        try:
            read_variable(switch.name, env)
        except ValueError as exc:
            problems.append(str(exc))
    # One variable at a time, each against its own declaration, so that every
    # bad value is named (a value that only its neighbours refuse, such as an
    # attempt delay below the default minimum when the minimum is lowered
    # too, is fine here: 'eyeshim run --attempt-delay 50ms' sets both)...
    fine = {}
    for setting in SETTINGS:
        raw = env.get(setting.variable)
        if raw is None:
            continue
        try:
            value = _parse_variable(setting.variable, setting.parse, raw)
            setting.check(value, setting.variable, repr(raw))
            fine[setting.variable] = raw
        except (TypeError, ValueError) as exc:
            problems.append(str(exc))
    # ...then the good ones together, for values that are fine alone but not
    # side by side.
    try:
        config = Config.from_env(fine)
    except (TypeError, ValueError) as exc:
        problems.append(str(exc))
    else:
        if len(fine) == sum(setting.variable in env for setting in SETTINGS):
            checked.config = config
    try:
        checked.integrations = select_integrations(env)
    except ValueError:
        pass  # already a problem of its switch
    checked.warnings = unknown_variables(env)
    return checked
