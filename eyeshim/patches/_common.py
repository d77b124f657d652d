"""What every integration shares: one attribute patch, when to step aside,
and how to find one's place among other wrappers of the same function.

This module is imported at interpreter start-up by the drop-in (through
``eyeshim.patches``), so it imports nothing that ``site`` has not imported
already: no wrapt, no socket, no threading, no typing, no logging.

**Stand-ins.**  A patch replaces a function with a plain Python function,
its *stand-in*, that looks like the original to introspection: it carries
the original's ``__name__``, ``__qualname__``, ``__module__``, ``__doc__``,
``__dict__``, ``__defaults__``, ``__kwdefaults__`` and ``__annotations__``,
and ``__wrapped__`` names the function it wraps, so ``inspect.signature``
shows the original's signature.  Unlike a proxy object its type *is*
``function`` (``type(f) is types.FunctionType``), and it pickles by name as
the original does.  It calls through its own ``__wrapped__`` at call time,
so anyone who re-points that attribute (as eyeshim does to other wrappers)
changes what it calls.

**Other wrappers** (APMs, tracers, test doubles) of the same function, put
there before eyeshim, stay in the call path: eyeshim follows the
``__wrapped__`` chain down from the module attribute, and when the function
at its bottom is the genuine one and the wrapper just above it can be
re-pointed (a wrapt proxy, of any copy of wrapt, or a plain function whose
closure holds what its ``__wrapped__`` names), the stand-in goes *beneath*
that wrapper: the wrapper sees every call, and eyeshim races under it.
Otherwise the stand-in goes outside and hands every call, unchanged, to
what it wraps: the foreign function keeps working and eyeshim says in
``status`` that it stepped aside.  ``unpatch()`` takes the stand-in out of
the chain wherever it is; where it cannot (a wrapper that is not
re-pointable holds it), the stand-in is switched to pass-through, so no
eyeshim behaviour is left in any order of install and uninstall.

**Post-import hooks** (:func:`when_imported`) are eyeshim's own: a finder at
the front of ``sys.meta_path`` marks the spec of a watched module, and the
import system's own "import finished" signal (``spec._initializing`` set back
to False) runs the hook, so ``import urllib3`` after ``install()`` is patched.
"""

from __future__ import annotations

import _thread
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

    Handler = Callable[[Callable[..., Any], Tuple[Any, ...], Dict[str, Any]], Any]
else:
    ModuleSpec = type(sys.__spec__)  # the import system's spec class, without importing it

_FunctionType = type(lambda: None)


def debug(message: str, *args: Any) -> None:
    """Log at DEBUG on the ``eyeshim`` logger, if logging is in use at all.

    Installing must stay cheap for the start-up hook, and importing logging
    is a few milliseconds.  A program that never imported logging has no
    handler that could show a DEBUG record, so there is nothing to lose.
    """
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger("eyeshim").debug(message, *args)


def warning(message: str, *args: Any) -> None:
    # Warnings reach stderr even without configuration (logging's last
    # resort handler), so logging is imported for them.
    import logging

    logging.getLogger("eyeshim").warning(message, *args)


def step_aside() -> Optional[str]:
    """Why eyeshim must not race right now, or None.

    gevent and eventlet replace the socket module's classes and functions
    with cooperative versions; so do test fakes such as httpretty, and
    proxies such as PySocks' ``socket.socket = socks.socksocket``.  A race on
    real non-blocking sockets would bypass all of them (and block a gevent
    hub), so under any of them eyeshim delegates to what is there.  Checked
    on every call, because they may be applied after ``install()``; the
    checks are a few attribute lookups.  eyeshim never imports gevent or
    eventlet itself.
    """
    socket = sys.modules.get("socket")
    if socket is None:
        return None
    cls = socket.socket
    if cls.__module__ != "socket":
        return f"socket.socket is {cls.__module__}.{cls.__qualname__}"
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        return "gevent monkey-patched socket"
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("socket"):
        return "eventlet monkey-patched socket"
    return None


# -- post-import hooks -----------------------------------------------------------------

_hooks_lock = _thread.RLock()
_pending: Dict[str, List[Callable[[Any], None]]] = {}
# Specs marked but whose import has not finished (a spec may be asked for
# without an import following: importlib.util.find_spec), by id.
_marked: Dict[int, ModuleSpec] = {}


def when_imported(name: str, hook: Callable[[Any], None]) -> None:
    """Call ``hook(module)`` now if module ``name`` is imported, otherwise
    once its import has finished (a failed import calls nothing)."""
    with _hooks_lock:
        module = sys.modules.get(name)
        spec = _spec_of(module) if module is not None else None
        if module is not None and not (spec is not None and _initializing(spec)):
            ready = True
        else:
            ready = False
            _pending.setdefault(name, []).append(hook)
            if spec is not None:  # imported right now, in this or another thread
                _mark(spec, running=True)
            if _finder not in sys.meta_path:
                sys.meta_path.insert(0, _finder)
    if ready:
        _run(hook, module)


def forget(name: str, hook: Callable[[Any], None]) -> None:
    """Cancel a hook that has not run."""
    with _hooks_lock:
        hooks = _pending.get(name)
        if hooks is not None and hook in hooks:
            hooks.remove(hook)
            if not hooks:
                del _pending[name]
        if not _pending:
            _unhook()


def _spec_of(module: Any) -> Any:
    try:
        # Not getattr(module, "__spec__"): a lazy module (importlib.util.
        # LazyLoader) would load itself on any attribute access.
        return object.__getattribute__(module, "__dict__").get("__spec__")
    except Exception:
        return None


def _initializing(spec: Any) -> bool:
    try:
        return bool(getattr(spec, "_initializing", False))
    except Exception:
        return False


def _run(hook: Callable[[Any], None], module: Any) -> None:
    try:
        hook(module)
    except Exception as exc:  # never break the program's import
        warning("eyeshim: could not patch %s: %s: %s", module.__name__, type(exc).__name__, exc)


def _unhook() -> None:
    try:
        while _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
    except ValueError:  # removed by another thread in between
        pass
    leftovers = list(_marked.values())
    _marked.clear()
    for spec in leftovers:
        if type(spec) is _HookedSpec and not spec.__dict__.get("_eyeshim_running"):
            spec.__class__ = ModuleSpec  # type: ignore[assignment]


def _mark(spec: Any, running: bool = False) -> None:
    if type(spec) is not ModuleSpec:
        return  # a custom spec class is not ours to touch
    if running:
        spec.__dict__["_eyeshim_running"] = True
    spec.__class__ = _HookedSpec
    _marked[id(spec)] = spec


def _import_finished(name: str) -> None:
    with _hooks_lock:
        module = sys.modules.get(name)
        if module is None:  # the import failed: wait for a later one
            return
        hooks = _pending.pop(name, [])
        if not _pending:
            _unhook()
    for hook in hooks:
        _run(hook, module)


class _HookedSpec(ModuleSpec):
    """A module spec that reports when its import has finished.

    ``importlib._bootstrap._load_unlocked`` (3.9 to 3.14 checked) sets
    ``spec._initializing = True`` before running the module and ``False`` in
    a ``finally`` after it: the one moment the import system tells anyone
    that an import is over.  Watched specs get this class for the duration of
    the import and become plain specs again, so no trace is left on the
    module; the loader is never wrapped.
    """

    @property
    def _initializing(self) -> bool:
        value: bool = self.__dict__.get("_eyeshim_running", False)
        return value

    @_initializing.setter
    def _initializing(self, value: bool) -> None:
        if value:
            self.__dict__["_eyeshim_running"] = True
            return
        was_running = self.__dict__.pop("_eyeshim_running", False)
        self.__class__ = ModuleSpec  # type: ignore[assignment]
        self.__dict__["_initializing"] = False
        with _hooks_lock:
            _marked.pop(id(self), None)
        if was_running:
            _import_finished(self.name)


class _HookFinder:
    """Meta path finder that marks the specs of modules with pending hooks.

    It finds nothing itself: it asks the finders behind it, as the import
    system would, and marks the spec it gets.  For any other module the cost
    is one dict lookup.
    """

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]] = None, target: Any = None
    ) -> Optional[ModuleSpec]:
        if fullname not in _pending:
            return None
        finders = sys.meta_path
        try:
            position = finders.index(self)
        except ValueError:
            return None
        spec = None
        for finder in finders[position + 1 :]:
            find = getattr(finder, "find_spec", None)
            if find is None:
                return None  # a legacy finder: let the import system do it all
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is not None and getattr(spec.loader, "exec_module", None) is not None:
            with _hooks_lock:
                _mark(spec)
        return spec

    def __repr__(self) -> str:
        return "<eyeshim post-import hooks>"


_finder = _HookFinder()


# -- stand-ins and the __wrapped__ chain ------------------------------------------------

_TRANSPARENT = ("__module__", "__name__", "__qualname__", "__doc__")
_LINKS = 64  # a longer __wrapped__ chain is a cycle or a mistake


def _make_stand_in(patch: AttributePatch, below: Any) -> Any:
    def stand_in(*args: Any, **kwargs: Any) -> Any:
        return patch.call(stand_in.__wrapped__, args, kwargs)  # type: ignore[attr-defined]

    for name in _TRANSPARENT:
        try:
            setattr(stand_in, name, getattr(below, name))
        except (AttributeError, TypeError):
            pass
    try:
        stand_in.__dict__.update(below.__dict__)
    except (AttributeError, TypeError):
        pass
    # What a proxy would forward: the defaults and annotations of the
    # original.  Harmless on a function whose parameters are *args and
    # **kwargs: defaults only fill declared parameters.
    for name in ("__defaults__", "__kwdefaults__", "__annotations__"):
        value = getattr(below, name, None)
        if value is not None:
            try:
                setattr(stand_in, name, value)
            except (AttributeError, TypeError):
                pass
    stand_in.__wrapped__ = below  # type: ignore[attr-defined]
    return stand_in


_STAND_IN_CODE = next(
    code for code in _make_stand_in.__code__.co_consts if getattr(code, "co_name", "") == "stand_in"
)


def _cell(stand_in: Any, name: str) -> Any:
    return dict(zip(stand_in.__code__.co_freevars, stand_in.__closure__))[name]


def patch_of(func: Any) -> Optional[AttributePatch]:
    """The patch whose stand-in ``func`` is, or None."""
    if type(func) is not _FunctionType or func.__code__ is not _STAND_IN_CODE:
        return None
    patch: AttributePatch = _cell(func, "patch").cell_contents
    return patch


def _below(link: Any) -> Any:
    """What ``link`` says it wraps (``__wrapped__``), or None."""
    try:
        return link.__wrapped__
    except Exception:  # AttributeError, or a proxy whose target is gone
        return None


def chain(top: Any) -> List[Any]:
    """``top`` and what it wraps, following ``__wrapped__`` down."""
    links = [top]
    seen = {id(top)}
    while len(links) < _LINKS:
        below = _below(links[-1])
        if below is None or id(below) in seen:
            break
        links.append(below)
        seen.add(id(below))
    return links


def position(links: List[Any], target: Any) -> int:
    """Where ``target`` is in ``links``, by identity, or -1.  (Not
    ``list.index``: a proxy compares equal to what it wraps.)"""
    for index, link in enumerate(links):
        if link is target:
            return index
    return -1


def _closure_cell(link: Any, target: Any) -> Any:
    """The one closure cell of plain function ``link`` holding ``target``."""
    if type(link) is not _FunctionType or link.__dict__.get("__wrapped__") is not target:
        return None
    cells = [cell for cell in link.__closure__ or () if _cell_holds(cell, target)]
    return cells[0] if len(cells) == 1 else None


def _cell_holds(cell: Any, target: Any) -> bool:
    try:
        return cell.cell_contents is target
    except ValueError:  # an empty cell
        return False


def _is_proxy(link: Any) -> bool:
    """A wrapt proxy (wrapt 1.x, 2.x or a vendored copy): calls ``__wrapped__``."""
    return any(cls.__name__ == "ObjectProxy" for cls in type(link).__mro__)


def repointable(link: Any, target: Any) -> bool:
    """Whether eyeshim can make ``link`` call something else instead of ``target``."""
    if patch_of(link) is not None:
        return True
    if _is_proxy(link):
        return True
    return _closure_cell(link, target) is not None


def repoint(link: Any, target: Any, replacement: Any) -> bool:
    """Make ``link`` call ``replacement`` where it called ``target``."""
    if patch_of(link) is not None or _is_proxy(link):
        try:
            link.__wrapped__ = replacement
        except Exception:
            return False
        return _below(link) is replacement
    cell = _closure_cell(link, target)
    if cell is None:
        return False
    cell.cell_contents = replacement
    link.__wrapped__ = replacement
    return True


def describe(func: Any) -> str:
    """``module.qualname`` of a function, or its type."""
    try:
        return f"{func.__module__}.{func.__qualname__}"
    except Exception:
        return type(func).__qualname__


# -- one attribute patch -----------------------------------------------------------------


class AttributePatch:
    """Replace ``module.attribute`` with a stand-in, now or when the module is imported.

    ``handler(below, args, kwargs)`` does eyeshim's work; ``below`` is the
    function the stand-in wraps.  With ``replaces=True`` (create_connection)
    the handler replaces the call, so it runs only when ``below`` is the
    genuine function (``genuine`` names the modules that define it): above a
    foreign function eyeshim cannot see beneath, every call goes to it.
    With ``replaces=False`` (getaddrinfo) the handler calls ``below``
    itself, whatever it is.
    """

    def __init__(
        self,
        module: str,
        attribute: str,
        handler: Handler,
        replaces: bool = True,
        genuine: Tuple[str, ...] = (),
    ) -> None:
        self.module_name = module
        self.attribute = attribute
        self.handler = handler
        self.replaces = replaces
        self.genuine = genuine or (module,)
        self._lock = _thread.RLock()
        self._on = False
        self._module: Any = None
        self._stand_in: Any = None  # ours, somewhere in the attribute's chain
        self._adopted: Any = None  # another patch's stand-in found in place (ssl's copy)
        self._original: Any = None  # what the attribute held before
        self._checked: Any = None  # the last ``below`` whose genuineness was checked
        self._checked_genuine = False

    # -- calls

    def call(self, below: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        if not self._on:
            return below(*args, **kwargs)
        if self.replaces:
            if below is not self._checked:
                self._checked_genuine = self.is_genuine(below)
                self._checked = below
            if not self._checked_genuine or step_aside() is not None:
                return below(*args, **kwargs)
        return self.handler(below, args, kwargs)

    def _get(self, module: Any) -> Any:
        """The patched attribute of ``module`` (``attribute`` may be a
        dotted path: ``"HTTPSConnection.connect"`` is a class's method)."""
        owner = module
        for part in self.attribute.split("."):
            owner = getattr(owner, part, None)
            if owner is None:
                return None
        return owner

    def _set(self, module: Any, value: Any) -> None:
        *path, name = self.attribute.split(".")
        owner = module
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, value)

    def is_genuine(self, func: Any) -> bool:
        """Whether ``func`` is the library's own function (no foreign wrapper)."""
        if type(func) is not _FunctionType or "__wrapped__" in func.__dict__:
            return False
        return func.__module__ in self.genuine and func.__qualname__ == self.attribute

    # -- patch / unpatch

    def patch(self) -> None:
        with self._lock:
            if self._on:
                return
            self._on = True
        when_imported(self.module_name, self._apply)

    def _apply(self, module: Any) -> None:
        with self._lock:
            if not self._on or self._stand_in is not None or self._adopted is not None:
                return
            current = self._get(module)
            if current is None:
                warning("eyeshim: %s.%s not found; not patched", self.module_name, self.attribute)
                return
            self._module = module
            other = patch_of(current)
            if other is not None and other is not self and other._on:
                # Another of eyeshim's patches already covers it: ssl imported
                # after socket was patched bound socket's stand-in by name.
                self._adopted, self._original = current, other._original
                debug("%s.%s is already eyeshim's", self.module_name, self.attribute)
                return
            links = chain(current)
            stand_in = None
            for link in links:
                other = patch_of(link)
                if other is None or other is self:
                    continue
                if other._on:
                    # Another of eyeshim's patches covers it already: ssl,
                    # imported after socket was patched, bound socket's
                    # stand-in by name.
                    self._adopted = current
                    self._original = link.__wrapped__ if link is current else current
                    debug("%s.%s is eyeshim's already", self.module_name, self.attribute)
                    return
                # A stand-in that an earlier uninstall had to leave behind
                # (passing calls through) under a wrapper it could not
                # re-point: it serves again rather than a second layer.
                _cell(link, "patch").cell_contents = self
                stand_in = link
                break
            if stand_in is None:
                bottom = links[-1]
                if len(links) > 1 and self.is_genuine(bottom) and repointable(links[-2], bottom):
                    stand_in = _make_stand_in(self, bottom)
                    if repoint(links[-2], bottom, stand_in):
                        debug(
                            "patched %s.%s beneath %s",
                            self.module_name,
                            self.attribute,
                            describe(links[-2]),
                        )
                    else:
                        stand_in = None
                if stand_in is None:
                    stand_in = _make_stand_in(self, current)
                    self._set(module, stand_in)
                    debug("patched %s.%s", self.module_name, self.attribute)
            self._stand_in, self._original = stand_in, current

    def unpatch(self) -> None:
        with self._lock:
            self._on = False
            module, stand_in, adopted = self._module, self._stand_in, self._adopted
            original = self._original
            self._stand_in = self._adopted = self._module = self._original = None
            self._checked = None
        forget(self.module_name, self._apply)
        if adopted is not None:
            if self._get(module) is adopted:
                self._set(module, original)
            return
        if stand_in is None:
            return
        below = stand_in.__wrapped__
        current = self._get(module)
        if current is stand_in:
            self._set(module, below)
            debug("restored %s.%s", self.module_name, self.attribute)
            return
        links = chain(current)
        where = position(links, stand_in)
        if where > 0:
            parent = links[where - 1]
            if repoint(parent, stand_in, below):
                debug("took eyeshim out from beneath %s", describe(parent))
                return
        elif current is original or position(chain(below), current) >= 0:
            return  # someone put back what eyeshim wrapped, or what that wrapped
        # Left in a chain eyeshim cannot edit (or replaced outright): the
        # stand-in stays, switched off, and passes every call straight on.
        if where < 0:
            message = (
                f"eyeshim: {self.module_name}.{self.attribute} was replaced by someone else "
                "after eyeshim patched it; leaving their version in place (eyeshim's "
                "function, if they still call it, now passes every call straight through)"
            )
            import warnings

            warnings.warn(message, RuntimeWarning, stacklevel=3)
            warning("%s", message)

    # -- what it is doing

    def state(self) -> str:
        """ "patched", "waiting for import", "replaced by a third party" or "inactive"."""
        with self._lock:
            if not self._on:
                return "inactive"
            module, ours = self._module, self._stand_in or self._adopted
        if ours is None:
            return "waiting for import"
        if position(chain(self._get(module)), ours) < 0:
            return "replaced by a third party"
        return "patched"

    def report(self) -> Dict[str, Any]:
        """The state, whether calls race, why not, and the foreign wrappers around."""
        state = self.state()
        out: Dict[str, Any] = {"state": state, "active": False, "why": None, "wrappers": []}
        with self._lock:
            module, ours = self._module, self._stand_in or self._adopted
        if state == "waiting for import":
            out["why"] = f"{self.module_name} is not imported yet"
            return out
        if state != "patched":
            out["why"] = (
                f"{self.module_name}.{self.attribute} was replaced after eyeshim patched it"
            )
            return out
        target = f"{self.module_name}.{self.attribute}"
        links = chain(self._get(module))
        for link in links[: position(links, ours)]:
            if patch_of(link) is None:
                out["wrappers"].append(f"{describe(link)} (over eyeshim: sees every call)")
        below = ours.__wrapped__
        if self.replaces and not self.is_genuine(below):
            out["wrappers"].append(f"{describe(below)} (under eyeshim: gets every call)")
            out["why"] = (
                f"{target} was already {describe(below)}, which eyeshim cannot get beneath; "
                "eyeshim wraps it from outside and hands it every call unchanged"
            )
            return out
        aside = step_aside()
        if aside is not None:
            out["why"] = aside
            return out
        out["active"] = True
        return out

    @property
    def original(self) -> Any:
        return self._original


class PatchGroup:
    """Several attribute patches that make up one integration."""

    def __init__(self, *patches: AttributePatch) -> None:
        self.patches = patches

    def patch(self) -> None:
        for patch in self.patches:
            patch.patch()

    def unpatch(self) -> None:
        for patch in self.patches:
            patch.unpatch()

    def state(self) -> str:
        # The first patch is the one that matters; the others are extra
        # bindings of the same function (e.g. ssl's copy).
        return self.patches[0].state()

    def report(self) -> Dict[str, Any]:
        return self.patches[0].report()
