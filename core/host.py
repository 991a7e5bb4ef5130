"""The plugin host: one pluggy manager, loaded once, holding every colorizer, loss and metric.

Built-in plugins (``DEFAULT_PLUGINS``) and third-party plugins (entry-point group ``colorvid``)
go through the same path: import the module, register it with the manager, call its
``register_*`` hooks with a callback that records each name. Failures never stop the other
plugins: an import error, an exception inside a hook or a name that is already taken is kept as a
:class:`PluginError` (with the original exception chained), warned about, and shown by
``colorvid plugins``.

Environment:
    COLORVID_LOAD_PLUGINS: comma-separated allowlist of third-party plugin (entry-point) names
        to load; empty means none. Built-in plugins always load.
    COLORVID_TRACE_PLUGINS: set to 1 to print every hook call and its result to stderr.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata as metadata
import inspect
import os
import re
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Literal

import pluggy

from colorvid.core import hookspecs

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "PluginEntry",
    "PluginError",
    "PluginHost",
    "PluginLoadWarning",
    "accepted_options",
    "get_host",
    "reset_host",
]

ENTRY_POINT_GROUP = "colorvid"
Kind = Literal["colorizer", "loss", "metric", "trainer"]
KINDS: tuple[Kind, ...] = ("colorizer", "loss", "metric", "trainer")
_HOOK_OF_KIND = {
    "colorizer": "register_colorizers",
    "loss": "register_losses",
    "metric": "register_metrics",
    "trainer": "register_trainers",
}
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")

# Modules of the built-in plugins, registered exactly like third-party ones.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "colorvid.plugins.grey",
    "colorvid.plugins.losses",
    "colorvid.plugins.lrcn",
    "colorvid.plugins.ensemble",
    "colorvid.plugins.metrics",
    "colorvid.plugins.metrics_temporal",
    "colorvid.plugins.models.zhang",
    "colorvid.plugins.models.larsson",
    "colorvid.plugins.models.mobilenet",
    # The trainers of the built-in colorizers (what `colorvid train --model NAME` builds).
    "colorvid.core.training.adapters",
)


def accepted_options(factory: Any) -> set[str] | None:
    """Keyword names a plugin factory accepts; None when it takes ``**kwargs`` (anything)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded or registered something invalid."""


@dataclasses.dataclass(frozen=True)
class PluginEntry:
    """One registered object: what ``colorvid plugins`` lists."""

    name: str
    kind: Kind
    factory: Callable[..., Any]
    plugin: str  # the plugin (module / entry point) that registered it
    distribution: str
    version: str
    description: str = ""

    def create(self, **options: Any) -> Any:
        """Build the object with keyword options; sets ``.name`` to the registered name."""
        obj = self.factory(**options)
        try:
            obj.name = self.name
        except AttributeError:  # slotted or frozen objects keep their own name
            pass
        return obj

    def record(self) -> dict[str, str]:
        return {
            "name": self.name,
            "kind": self.kind,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
            "description": self.description,
        }


@dataclasses.dataclass(frozen=True)
class PluginError:
    """A plugin failure: which plugin, what went wrong, and the original exception."""

    plugin: str
    message: str
    error: BaseException | None = None

    def __str__(self) -> str:
        detail = f": {type(self.error).__name__}: {self.error}" if self.error else ""
        return f"plugin {self.plugin!r}: {self.message}{detail}"

    def record(self) -> dict[str, str]:
        out = {"plugin": self.plugin, "message": self.message}
        if self.error is not None:
            out["error"] = f"{type(self.error).__name__}: {self.error}"
            out["traceback"] = "".join(traceback.format_exception(self.error))
        return out


@dataclasses.dataclass
class _Origin:
    plugin: str
    distribution: str
    version: str


def _own_version() -> str:
    try:
        return metadata.version("colorvid")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


class PluginHost:
    """Loads plugins and answers look-ups by kind and name.

    >>> host = PluginHost.load()
    >>> "grey" in host.names("colorizer")
    True
    """

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs.ColorvidSpec)
        self.errors: list[PluginError] = []
        self._entries: dict[Kind, dict[str, PluginEntry]] = {k: {} for k in KINDS}
        self._origins: dict[str, _Origin] = {}
        self._collected = False
        if os.environ.get("COLORVID_TRACE_PLUGINS", "").strip() not in ("", "0", "false", "no"):
            self.enable_tracing()

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        builtin: Iterable[str] = DEFAULT_PLUGINS,
        entry_points: bool = True,
        allow: Iterable[str] | None = None,
    ) -> PluginHost:
        """Build a host with the built-in plugins and (by default) the installed third-party ones.

        ``allow`` overrides ``COLORVID_LOAD_PLUGINS`` (None: read the environment).
        """
        host = cls()
        for module_name in builtin:
            host.add_module(module_name, distribution="colorvid", version=_own_version())
        if entry_points:
            host.add_entry_points(allow=allow)
        host.collect()
        return host

    def _error(self, plugin: str, message: str, error: BaseException | None = None) -> None:
        err = PluginError(plugin, message, error)
        self.errors.append(err)
        warnings.warn(str(err), PluginLoadWarning, stacklevel=3)

    def add_module(self, module_name: str, *, distribution: str, version: str,
                   plugin_name: str | None = None) -> bool:
        """Import a module and register it as a plugin. Returns False (and records why) on error."""
        name = plugin_name or module_name.rsplit(".", 1)[-1]
        try:
            module = importlib.import_module(module_name)
        except Exception as e:  # noqa: BLE001 - any import failure is the plugin's, not ours
            self._error(name, f"failed to import module {module_name!r}", e)
            return False
        return self.add_plugin(module, name=name, distribution=distribution, version=version)

    def add_plugin(self, plugin: object, *, name: str, distribution: str = "unknown",
                   version: str = "unknown") -> bool:
        """Register a plugin object (module, class instance). Its hooks run at the next look-up."""
        if self.pm.has_plugin(name):
            self._error(name, "a plugin with this name is already registered")
            return False
        try:
            self.pm.register(plugin, name=name)
        except Exception as e:  # noqa: BLE001 - pluggy validation errors (bad hook names/args)
            self._error(name, "pluggy refused the plugin", e)
            return False
        self._origins[name] = _Origin(name, distribution, version)
        self._collected = False
        return True

    def add_entry_points(self, allow: Iterable[str] | None = None) -> None:
        """Load third-party plugins from the ``colorvid`` entry-point group."""
        if allow is None:
            env = os.environ.get("COLORVID_LOAD_PLUGINS")
            allow = None if env is None else [s.strip() for s in env.split(",") if s.strip()]
        allowed = None if allow is None else set(allow)
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if allowed is not None and ep.name not in allowed:
                continue
            dist = ep.dist.name if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else "unknown"
            try:
                plugin = ep.load()
            except Exception as e:  # noqa: BLE001
                self._error(ep.name, f"failed to load entry point {ep.value!r} from {dist}", e)
                continue
            self.add_plugin(plugin, name=ep.name, distribution=dist, version=version)

    def unregister(self, name: str) -> None:
        """Remove a plugin and everything it registered (tests use this to clean up)."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin, name=name)
        self._origins.pop(name, None)
        self._collected = False

    def enable_tracing(self, write: Callable[[str], Any] | None = None) -> Callable[[], None]:
        """Print every hook call (plugin, outcome) to stderr. Returns an undo function."""
        out = write or (lambda s: print(s, file=sys.stderr))

        def before(hook_name: str, hook_impls: list, kwargs: dict) -> None:
            plugins = ", ".join(impl.plugin_name for impl in hook_impls)
            out(f"colorvid: hook {hook_name} -> [{plugins}]")

        def after(outcome: Any, hook_name: str, hook_impls: list, kwargs: dict) -> None:
            exc = outcome.exception
            status = "ok" if exc is None else f"raised {type(exc).__name__}: {exc}"
            out(f"colorvid: hook {hook_name} {status}")

        return self.pm.add_hookcall_monitoring(before, after)

    # -- collecting registrations -------------------------------------------------------------
    def collect(self) -> None:
        """Call every plugin's ``register_*`` hooks, one plugin at a time, and index the names."""
        self._entries = {k: {} for k in KINDS}
        self.errors = [e for e in self.errors if not e.message.startswith("register")]
        plugin_names = [n for n, _ in self.pm.list_name_plugin()]
        for kind in KINDS:
            hook_name = _HOOK_OF_KIND[kind]
            for plugin_name in plugin_names:
                others = [p for n, p in self.pm.list_name_plugin() if n != plugin_name]
                caller = self.pm.subset_hook_caller(hook_name, remove_plugins=others)
                if not caller.get_hookimpls():
                    continue
                register = self._make_register(kind, plugin_name)
                try:
                    caller(register=register)
                except Exception as e:  # noqa: BLE001 - keep the other plugins working
                    self._error(plugin_name, f"register: {hook_name} raised", e)
        self._collected = True

    def _make_register(self, kind: Kind, plugin_name: str) -> Callable[..., None]:
        origin = self._origins.get(plugin_name, _Origin(plugin_name, "unknown", "unknown"))

        def register(name: str, factory: Callable[..., Any], *, description: str = "") -> None:
            if not isinstance(name, str) or not _NAME_RE.match(name):
                self._error(plugin_name, f"register: invalid {kind} name {name!r} (use lower-case "
                            "letters, digits, '_' and '-', starting with a letter or digit)")
                return
            if not callable(factory):
                self._error(plugin_name, f"register: {kind} {name!r} factory is not callable")
                return
            existing = self._entries[kind].get(name)
            if existing is not None:
                self._error(plugin_name, f"register: {kind} name {name!r} is already taken by "
                            f"plugin {existing.plugin!r}; this registration is ignored")
                return
            if not description:
                doc = (getattr(factory, "__doc__", None) or "").strip()
                description = doc.splitlines()[0] if doc else ""
            self._entries[kind][name] = PluginEntry(
                name, kind, factory, plugin_name, origin.distribution, origin.version, description
            )

        return register

    # -- look-ups -----------------------------------------------------------------------------
    def _ensure(self) -> None:
        if not self._collected:
            self.collect()

    def entries(self, kind: Kind | None = None) -> list[PluginEntry]:
        """Every registered object, sorted by kind then name."""
        self._ensure()
        kinds = KINDS if kind is None else (kind,)
        return [e for k in kinds for _, e in sorted(self._entries[k].items())]

    def names(self, kind: Kind) -> list[str]:
        return [e.name for e in self.entries(kind)]

    def entry(self, kind: Kind, name: str) -> PluginEntry:
        """The entry for ``name``; a KeyError names the available choices."""
        if kind not in KINDS:
            raise ValueError(f"unknown plugin kind {kind!r}; accepted: {', '.join(KINDS)}")
        self._ensure()
        try:
            return self._entries[kind][name]
        except KeyError:
            available = ", ".join(sorted(self._entries[kind])) or "none"
            raise KeyError(f"unknown {kind} {name!r}; available: {available}") from None

    def create(self, kind: Kind, name: str, **options: Any) -> Any:
        """Instantiate a registered colorizer / loss / metric with keyword options."""
        return self.entry(kind, name).create(**options)


_HOST: PluginHost | None = None
_HOST_LOCK = threading.Lock()


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _HOST
    with _HOST_LOCK:
        if _HOST is None:
            _HOST = PluginHost.load()
        return _HOST


def reset_host() -> None:
    """Forget the process-wide host (the next :func:`get_host` reloads plugins)."""
    global _HOST
    with _HOST_LOCK:
        _HOST = None
