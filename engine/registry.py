"""One small registry pattern for every pluggable family: retrievers, recommenders, encoders and
build steps (in the spirit of open_clip's factory).

A family's members live in one package, one module each; a module registers its class with the
family's ``register`` decorator. The first lookup imports every module of the package
(``pkgutil``), so a new member is one new file: no import list, no allow-list to edit. Errors name
the family and list the valid choices. ``source_patterns()`` gives the package's source files,
so a build step that runs every member hashes every member's code.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named members of one family, discovered from ``package`` on first use."""

    def __init__(self, family: str, package: str, *, key: Callable[[T], str] | None = None):
        self.family = family
        self.package = package
        self._key = key or (lambda obj: obj.name)  # type: ignore[attr-defined]
        self._members: dict[str, T] = {}
        self._discovered = False
        self._lock = threading.RLock()

    def register(self, obj: T) -> T:
        """Decorator: make ``obj`` available under its name (a second, other one is an error)."""
        name = self._key(obj)
        with self._lock:
            if name in self._members and self._members[name] is not obj:
                raise ValueError(f"{self.family} {name!r} registered twice")
            self._members[name] = obj
        return obj

    def discover(self) -> None:
        """Import every module of the package once (modules starting with _ are skipped)."""
        with self._lock:
            if self._discovered:
                return
            self._discovered = True  # set first: a module importing the registry does not recurse
            package = importlib.import_module(self.package)
            for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{info.name}")

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        self.discover()
        return list(self._members)

    def get(self, name: str) -> T:
        """The member registered as ``name``; an unknown name lists the valid choices."""
        self.discover()
        try:
            return self._members[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown {self.family} {name!r}; valid: {', '.join(self._members)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._members

    def __iter__(self) -> Iterator[T]:
        self.discover()
        return iter(list(self._members.values()))

    def source_patterns(self) -> tuple[str, ...]:
        """Globs (relative to ``engine/``) of the package's modules: what a step should hash."""
        rel = self.package.removeprefix("engine.").replace(".", "/")
        return (f"{rel}/*.py",)
