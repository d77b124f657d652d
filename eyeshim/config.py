"""Configuration: one immutable object, settable by keyword and by ``EYESHIM_*``.

Every tunable of the engine lives in :class:`Config`, a frozen dataclass, so a
configuration can be shared between threads and stored in a patched function
without anyone changing it underneath a running race.  ``Config.from_env()``
reads the same fields from environment variables; parsing and validation of
both paths happen here and nowhere else, so a bad value always produces the
same message naming the field (or the variable) and the accepted form.

RFC 8305 §8 asks that every value be configurable (checklist R29); the
defaults are the RFC's recommendations.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable, Iterable, Mapping, Optional, Tuple, Union

__all__ = [
    "ENV_PREFIX",
    "Config",
    "get_config",
    "parse_bool",
    "parse_duration",
    "parse_integrations",
    "set_config",
]

ENV_PREFIX = "EYESHIM_"

# RFC 8305 §5 floor: two attempts must never start closer together than this,
# whatever the configuration says.
ATTEMPT_DELAY_FLOOR = 0.010

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
    if not math.isfinite(value):
        raise ValueError(f"expected a finite duration, got {text!r}")
    return value


def parse_integrations(variable: str, text: str, known: Iterable[str]) -> Tuple[str, ...]:
    """Parse a comma-separated list of integration names (``EYESHIM_INTEGRATIONS``,
    ``EYESHIM_DISABLE``); unknown names raise ValueError naming the variable."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    allowed = tuple(known)
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ValueError(
            f"{variable}={text!r}: unknown integration(s) {', '.join(map(repr, unknown))}; "
            f"expected a comma-separated list of: {', '.join(allowed)}"
        )
    return names


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None


def _parse_policy(text: str) -> str:
    value = text.strip()
    if not value:
        raise ValueError("expected 'auto', 'rfc6724' or the path of a gai.conf file, got ''")
    return value


PolicySetting = Union[str, Any]  # "auto" | "rfc6724" | a gai.conf path | a PolicyTable


@dataclasses.dataclass(frozen=True)
class Config:
    """Tunables of the Happy Eyeballs engine (RFC 8305 §8 defaults).

    Durations are in seconds.  Instances are immutable; derive a variant with
    :meth:`replace`.
    """

    #: How long to wait for AAAA after A arrived first (R4, 50 ms).
    resolution_delay: float = 0.050
    #: Delay between connection attempts when no RTT history exists (R18, 250 ms).
    connection_attempt_delay: float = 0.250
    #: Lower bound of the history-derived attempt delay (R20, 100 ms).
    min_connection_attempt_delay: float = 0.100
    #: Upper bound of the history-derived attempt delay (R21, 2 s).
    max_connection_attempt_delay: float = 2.0
    #: Addresses of the preferred family tried before the first of the other (R13).
    first_address_family_count: int = 1
    #: Remember per-address connect times and failures (R10-R12).
    history: bool = True
    #: How many addresses the history remembers (least recently used are dropped).
    history_size: int = 1024
    #: How long a failure keeps an address at the back of the list.
    history_failure_ttl: float = 600.0
    #: How long a measured RTT stays valid.
    history_rtt_ttl: float = 600.0
    #: RFC 6724 policy table: "auto" (/etc/gai.conf when present, else the RFC
    #: table), "rfc6724", a gai.conf path, or a ``sorting.PolicyTable``.
    policy: PolicySetting = "auto"
    #: Upper bound on resolver threads shared by all races in the process.
    resolver_threads: int = 8
    #: How long an idle resolver thread lingers before it exits.
    resolver_idle_timeout: float = 2.0
    #: Cache per-family DNS answers in the process (off: getaddrinfo has no TTL).
    dns_cache: bool = False
    #: Lifetime of a cached positive answer.
    dns_cache_ttl: float = 30.0
    #: Lifetime of a cached failure (NXDOMAIN, NODATA, SERVFAIL, timeout).
    dns_cache_negative_ttl: float = 10.0
    #: How many (name, port, family) answers the cache holds.
    dns_cache_size: int = 1024
    #: Hand out cached answers rotated by one on each use, to spread load.
    dns_cache_rotate: bool = True
    #: Reach IPv4 literals through NAT64 on IPv6-only networks (RFC 8305 §7).
    nat64: bool = True
    #: How long a discovered NAT64 prefix is trusted before asking again.
    nat64_prefix_ttl: float = 600.0

    def __post_init__(self) -> None:
        for name in (
            "resolution_delay",
            "connection_attempt_delay",
            "min_connection_attempt_delay",
            "max_connection_attempt_delay",
            "history_failure_ttl",
            "history_rtt_ttl",
            "resolver_idle_timeout",
            "dns_cache_ttl",
            "dns_cache_negative_ttl",
            "nat64_prefix_ttl",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        for name in (
            "first_address_family_count",
            "history_size",
            "resolver_threads",
            "dns_cache_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value!r}")
        for name in ("history", "dns_cache", "dns_cache_rotate", "nat64"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        lo, hi = self.min_connection_attempt_delay, self.max_connection_attempt_delay
        if lo < ATTEMPT_DELAY_FLOOR:
            raise ValueError(
                f"min_connection_attempt_delay must be >= {ATTEMPT_DELAY_FLOOR} s "
                f"(RFC 8305 §5 forbids attempts closer than 10 ms), got {lo!r}"
            )
        if hi < lo:
            raise ValueError(
                "max_connection_attempt_delay must be >= min_connection_attempt_delay, "
                f"got {hi!r} < {lo!r}"
            )
        if not lo <= self.connection_attempt_delay <= hi:
            raise ValueError(
                "connection_attempt_delay must lie between min_connection_attempt_delay "
                f"and max_connection_attempt_delay ({lo!r}..{hi!r}), "
                f"got {self.connection_attempt_delay!r}"
            )
        if isinstance(self.policy, str):
            if not self.policy:
                raise ValueError("policy must be 'auto', 'rfc6724' or a gai.conf path")
        elif not hasattr(self.policy, "precedence"):
            raise TypeError(
                "policy must be 'auto', 'rfc6724', a gai.conf path or a PolicyTable, "
                f"got {self.policy!r}"
            )

    def replace(self, **changes: Any) -> Config:
        """Return a copy with ``changes`` applied (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(
        cls,
        environ: Optional[Mapping[str, str]] = None,
        base: Optional[Config] = None,
        **overrides: Any,
    ) -> Config:
        """Build a config from ``EYESHIM_<FIELD>`` variables, then ``overrides``.

        A malformed variable raises ``ValueError`` naming the variable, its
        value and the accepted form.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            var = ENV_PREFIX + field.name.upper()
            raw = env.get(var)
            if raw is None:
                continue
            parser = _ENV_PARSERS[field.name]
            try:
                values[field.name] = parser(raw)
            except ValueError as exc:
                raise ValueError(f"{var}={raw!r}: {exc}") from None
        values.update(overrides)
        start = base if base is not None else cls()
        try:
            return dataclasses.replace(start, **values)
        except (TypeError, ValueError) as exc:
            # A cross-field constraint (e.g. min > max) may involve variables.
            named = ", ".join(
                f"{ENV_PREFIX}{name.upper()}" for name in values if name not in overrides
            )
            if named:
                raise type(exc)(f"{exc} (from {named})") from None
            raise


_ENV_PARSERS: dict[str, Callable[[str], Any]] = {
    "resolution_delay": parse_duration,
    "connection_attempt_delay": parse_duration,
    "min_connection_attempt_delay": parse_duration,
    "max_connection_attempt_delay": parse_duration,
    "first_address_family_count": _parse_int,
    "history": parse_bool,
    "history_size": _parse_int,
    "history_failure_ttl": parse_duration,
    "history_rtt_ttl": parse_duration,
    "policy": _parse_policy,
    "resolver_threads": _parse_int,
    "resolver_idle_timeout": parse_duration,
    "dns_cache": parse_bool,
    "dns_cache_ttl": parse_duration,
    "dns_cache_negative_ttl": parse_duration,
    "dns_cache_size": _parse_int,
    "dns_cache_rotate": parse_bool,
    "nat64": parse_bool,
    "nat64_prefix_ttl": parse_duration,
}

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
