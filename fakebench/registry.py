"""Plug-ins found by name: one `Registry` each for generators, detectors and metrics, and the typed options a
plug-in declares.

A plug-in registers itself with a decorator, as timm registers models; adding one is adding one file:

    GENERATORS = Registry("generator", "fakebench.generators")

    @GENERATORS.register("warp")
    class WarpGenerator: ...

The built-in plug-ins are imported on first use (``create("warp")`` imports ``fakebench.generators.warp``;
listing imports every module of the package), so ``import fakebench`` stays light.

A plug-in declares its contract as class attributes; the registry reads these:

- ``description``: one line.
- ``options``: a tuple of `Option` (typed, with valid ranges), checked once by `validate_options`, whose
  `ConfigError` names the option's command-line flag.
- ``check_available(**options) -> str | None`` (optional classmethod): why the plug-in cannot run now (missing
  weights, say), or None.
- ``preload``: modules a worker process should import ahead of time to run the plug-in quickly (its own module
  is always included).
"""

from __future__ import annotations

import importlib
import math
import os
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fakebench.errors import ConfigError, FakebenchError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


# ---------------------------------------------------------------------------------------------- options

@dataclass(frozen=True)
class Option:
    """One option a plug-in takes: its keyword, type, default and valid values, and its command-line flag.

    ``type`` is int, float, bool, str or `pathlib.Path` (a file or folder; a plug-in may also accept an
    already loaded object, which is passed through unchecked). ``min``/``max`` bound numbers (inclusive);
    ``nonzero`` refuses 0; ``choices`` lists the allowed values. A default of None means "not set" and is
    accepted as a value. ``flag`` is how the command line spells it (default ``--`` + the name with dashes).
    """

    name: str
    type: type
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    help: str = ""
    flag: str | None = None
    nonzero: bool = False

    @property
    def cli_flag(self) -> str:
        return self.flag or default_flag(self.name)

    @property
    def type_name(self) -> str:
        return "path" if self.type is Path else self.type.__name__

    def describe(self) -> str:
        """One line: ``fps: float 1..120, default 25.0 -- output frame rate``."""
        parts = [f"{self.name}:", self.type_name]
        if self.min is not None or self.max is not None:
            low = "" if self.min is None else f"{self.min:g}"
            high = "" if self.max is None else f"{self.max:g}"
            parts.append(f"{low}..{high}")
        if self.nonzero:
            parts.append("non-zero")
        if self.choices:
            parts.append("|".join(str(c) for c in self.choices))
        text = " ".join(parts) + f", default {self.default}"
        return f"{text} -- {self.help}" if self.help else text


def default_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_option_text(option: Option, text: str) -> Any:
    """A value given as text (``--option KEY=VALUE``, a config file) converted to the option's type."""
    word = text.strip()
    if option.default is None and word.lower() in ("none", "null", ""):
        return None
    try:
        if option.type is bool:
            if word.lower() in TRUE_WORDS:
                return True
            if word.lower() in FALSE_WORDS:
                return False
            raise ValueError(word)
        if option.type is int:
            return int(word)
        if option.type is float:
            return float(word)
    except ValueError:
        raise ConfigError(f"{option.cli_flag} must be {_a(option)}, got {text!r}") from None
    return word


def validate_options(plugin: str, declared: Sequence[Option], values: Mapping[str, Any], *,
                     flags: Mapping[str, str] | None = None,
                     flag_of: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Check `values` against the options a plug-in declares; return every declared option, defaults filled in.

    Raises ConfigError naming the command-line flag: "--fps must be between 1 and 120, got 0", or for an
    option the plug-in does not take, "--shift-frames does not apply to warp". ``flags`` gives the flag the
    user actually typed for a key (e.g. ``--no-paste-back``); ``flag_of`` names an undeclared key's flag.
    """
    flags = dict(flags or {})
    by_name = {o.name: o for o in declared}
    for key in values:
        if key not in by_name:
            flag = flags.get(key) or (flag_of(key) if flag_of else default_flag(key))
            takes = ", ".join(o.name for o in declared) or "no options"
            raise ConfigError(f"{flag} does not apply to {plugin} (it takes {takes})")
    out = {}
    for option in declared:
        if option.name in values:
            flagged = replace(option, flag=flags.get(option.name, option.cli_flag))
            out[option.name] = check_value(flagged, values[option.name])
        else:
            out[option.name] = option.default
    return out


def check_value(option: Option, value: Any) -> Any:
    """One option's value, converted (text to its type, an int to a float) and checked; ConfigError if invalid."""
    given = value
    if value is None:
        if option.default is None:
            return None
        raise ConfigError(f"{option.cli_flag} needs a value ({_a(option)})")
    if isinstance(value, str) and option.type is not str and option.type is not Path:
        value = parse_option_text(option, value)
        if value is None:
            return None
    if option.type is bool:
        if not isinstance(value, bool | _np_bool()):
            raise ConfigError(f"{option.cli_flag} must be true or false, got {value!r}")
        value = bool(value)
    elif option.type is int:
        if isinstance(value, bool) or not _is_integral(value):
            raise ConfigError(f"{option.cli_flag} must be a whole number, got {value!r}")
        value = int(value)
    elif option.type is float:
        if isinstance(value, bool) or not _is_real(value) or not math.isfinite(float(value)):
            raise ConfigError(f"{option.cli_flag} must be a number, got {value!r}")
        value = float(value)
    elif option.type is str:
        if not isinstance(value, str):
            raise ConfigError(f"{option.cli_flag} must be text, got {value!r}")
    elif option.type is Path:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, str) and not value.strip():
            raise ConfigError(f"{option.cli_flag} must be a path, got an empty one")
    low, high = option.min, option.max
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            raise ConfigError(f"{option.cli_flag} must be between {low:g} and {high:g}, got {_show(given)}")
        if low is not None:
            raise ConfigError(f"{option.cli_flag} must be at least {low:g}, got {_show(given)}")
        raise ConfigError(f"{option.cli_flag} must be at most {high:g}, got {_show(given)}")
    if option.nonzero and value == 0:
        raise ConfigError(f"{option.cli_flag} must not be 0")
    if option.choices is not None and value not in option.choices:
        raise ConfigError(f"{option.cli_flag} must be one of {', '.join(map(str, option.choices))}, "
                          f"got {_show(given)}")
    return value


def check_seed(seed: Any) -> int:
    """A seed is a whole number >= 0 (the same for every plug-in); ConfigError naming --seed otherwise."""
    if isinstance(seed, bool) or not _is_integral(seed) or int(seed) < 0:
        raise ConfigError(f"--seed must be a whole number >= 0, got {seed!r}")
    return int(seed)


def _show(value: Any) -> str:
    """A value as the user wrote it: 0 for 0.0 given as 0, text without quotes."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return repr(value)


def _a(option: Option) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number"}.get(option.type, "text")


def _np_bool() -> type:
    import numpy as np

    return np.bool_


def _is_integral(value: Any) -> bool:
    import numbers

    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer()


def _is_real(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Real)


# ---------------------------------------------------------------------------------------------- the registry

@dataclass(frozen=True)
class Entry:
    """A registered plug-in as `Registry.available` lists it: ``unavailable`` says why it cannot run now."""

    name: str
    plugin: Any
    description: str
    unavailable: str | None = None

    @property
    def is_available(self) -> bool:
        return self.unavailable is None

    @property
    def options(self) -> tuple[Option, ...]:
        return tuple(getattr(self.plugin, "options", ()))


class Registry:
    """Plug-ins of one kind (generator, detector, metric) by name; the built-ins are modules of `package`."""

    def __init__(self, kind: str, package: str, *, skip: Iterable[str] = ("base",)) -> None:
        self.kind = kind
        self.package = package
        self.skip = frozenset(skip)
        self._entries: dict[str, Any] = {}
        self._discovered = False
        self._broken: dict[str, str] = {}  # built-in module -> why it could not be imported

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.package!r})"

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator: register a class or function under `name` (a class gets ``name`` as an attribute)."""
        if not isinstance(name, str) or not name or name != name.strip() or "," in name:
            raise ValueError(f"a {self.kind} name must be a non-empty word, got {name!r}")

        def add(plugin: Any) -> Any:
            known = self._entries.get(name)
            if known is not None and known is not plugin and _qualname(known) != _qualname(plugin):
                raise ValueError(f"{self.kind} {name!r} is registered twice ({_qualname(known)} and "
                                 f"{_qualname(plugin)})")
            if isinstance(plugin, type):
                plugin.name = name
            self._entries[name] = plugin
            return plugin

        return add

    # ------------------------------------------------------------------ loading

    def _load(self, name: str) -> None:
        """Make `name` registered if a built-in module provides it: its own module first, then all of them."""
        if name in self._entries:
            return
        if name.isidentifier() and name not in self.skip:
            try:
                importlib.import_module(f"{self.package}.{name}")
            except ModuleNotFoundError as e:  # no such built-in (or no such package): the search goes on
                if not _is_module_or_parent(e.name, f"{self.package}.{name}"):
                    raise
        if name not in self._entries:
            self.discover()

    def discover(self) -> None:
        """Import every built-in module of the package once (the ones that fail are listed as unavailable)."""
        if self._discovered:
            return
        try:
            package = importlib.import_module(self.package)
        except ModuleNotFoundError as e:
            if not _is_module_or_parent(e.name, self.package):
                raise
            package = None  # no built-ins: only what registers itself
        for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
            if info.name.startswith("_") or info.name in self.skip:
                continue
            module = f"{self.package}.{info.name}"
            try:
                importlib.import_module(module)
            except Exception as e:  # a broken plug-in must not hide the others
                self._broken[info.name] = f"cannot import {module}: {type(e).__name__}: {e}"
        self._discovered = True

    # ------------------------------------------------------------------ queries

    def registered(self) -> dict[str, Any]:
        """Every registered plug-in by name, in the order they registered (after importing the built-ins)."""
        self.discover()
        return dict(self._entries)

    def names(self) -> list[str]:
        """Every registered name, ordered by the plug-ins' ``default_rank`` (then by name)."""
        self.discover()
        return sorted(self._entries, key=lambda n: (getattr(self._entries[n], "default_rank", 1000), n))

    def get(self, name: str) -> Any:
        """The registered class or function; ConfigError listing the choices for an unknown name."""
        if not isinstance(name, str):
            raise ConfigError(f"a {self.kind} name must be text, got {name!r}")
        self._load(name)
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of {', '.join(sorted(self._entries))}") \
                from None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        self._load(name)
        return name in self._entries

    def create(self, name: str, **options: Any) -> Any:
        """An instance of plug-in `name` made with `options` (which the plug-in validates)."""
        return self.get(name)(**options)

    def unavailable_reason(self, name: str, **options: Any) -> str | None:
        """Why plug-in `name` cannot run with `options` now (e.g. its weights are missing), or None. Options
        the plug-in does not declare are ignored."""
        plugin = self.get(name)
        check = getattr(plugin, "check_available", None)
        if check is None:
            return None
        declared = {o.name for o in getattr(plugin, "options", ())}
        try:
            return check(**{k: v for k, v in options.items() if k in declared})
        except FakebenchError as e:
            return e.one_line()

    def available(self, **options: Any) -> dict[str, Entry]:
        """Every plug-in, sorted by name, each with the reason it cannot run now (None when it can).

        ``options`` go to each plug-in's ``check_available`` (only the ones it declares), e.g. a checkpoint path.
        """
        self.discover()
        entries = {}
        for name in sorted(self._entries):
            plugin = self._entries[name]
            entries[name] = Entry(name=name, plugin=plugin, description=getattr(plugin, "description", ""),
                                  unavailable=self.unavailable_reason(name, **options))
        for module, why in sorted(self._broken.items()):
            entries.setdefault(module, Entry(name=module, plugin=None, description="", unavailable=why))
        return entries

    def preload_modules(self, names: Iterable[str]) -> tuple[str, ...]:
        """The modules a worker process should import ahead of time to run plug-ins `names`: each plug-in's own
        module, then those it declares in ``preload``."""
        modules: dict[str, None] = {}
        for name in names:
            plugin = self.get(name)
            modules[plugin.__module__] = None
            for module in getattr(plugin, "preload", ()):
                modules[module] = None
        return tuple(modules)

    def flag_of(self, key: str) -> str:
        """The command-line flag of option `key` as the registered plug-ins declare it (else ``--key``)."""
        for plugin in self._entries.values():
            for option in getattr(plugin, "options", ()):
                if option.name == key:
                    return option.cli_flag
        return default_flag(key)


def _is_module_or_parent(missing: str | None, module: str) -> bool:
    return bool(missing) and (module == missing or module.startswith(f"{missing}."))


def _qualname(obj: Any) -> str:
    """What makes two registrations the same plug-in: a class's or function's qualified name, or the
    ``registry_key`` a plug-in given as data (a metric's spec) declares."""
    key = getattr(obj, "registry_key", None)
    if isinstance(key, str):
        return key
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
