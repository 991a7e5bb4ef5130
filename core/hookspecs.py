"""The hooks a colorvid plugin can implement.

A plugin is a module (or object) with functions decorated by :data:`hookimpl`. Each hook receives
a ``register`` callback; the host owns naming, validation and conflict reporting::

    import colorvid

    @colorvid.hookimpl
    def register_colorizers(register):
        register("sepia", SepiaColorizer, description="Constant sepia tone")

Third-party plugins are found through the ``colorvid`` entry-point group::

    [project.entry-points.colorvid]
    sepia = "colorvid_sepia"
"""

from __future__ import annotations

from typing import Protocol

import pluggy

__all__ = ["PROJECT_NAME", "hookspec", "hookimpl", "Register", "ColorvidSpec"]

PROJECT_NAME = "colorvid"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class Register(Protocol):
    """The callback handed to every ``register_*`` hook.

    ``register(name, factory, *, description="")``: ``name`` is the public name (lower case,
    letters, digits, ``_`` and ``-``); ``factory`` is a class or callable that takes keyword
    options and returns the plugin object (a :class:`~colorvid.core.interfaces.Colorizer`,
    :class:`~colorvid.core.interfaces.Loss` or :class:`~colorvid.core.interfaces.Metric`).
    Factories are called only when the object is used, so registering is cheap.
    """

    def __call__(self, name: str, factory: object, *, description: str = "") -> None: ...


class ColorvidSpec:
    """Hook specifications of the ``colorvid`` project."""

    @hookspec
    def register_colorizers(self, register: Register) -> None:
        """Register colorizers: ``register(name, factory)``, factory(**options) -> Colorizer.

        :param register: callback taking ``(name, factory, *, description="")``.
        """

    @hookspec
    def register_losses(self, register: Register) -> None:
        """Register training losses: ``register(name, factory)``, factory(**options) -> Loss.

        :param register: callback taking ``(name, factory, *, description="")``.
        """

    @hookspec
    def register_trainers(self, register: Register) -> None:
        """Register what ``colorvid train --model NAME`` trains: ``register(name, factory)``,
        factory(*, preset, init, options) -> a
        :class:`~colorvid.core.training.adapters.TrainAdapter` (name: the colorizer's).

        :param register: callback taking ``(name, factory, *, description="")``.
        """

    @hookspec
    def register_metrics(self, register: Register) -> None:
        """Register evaluation metrics: ``register(name, factory)``, factory(**options) -> Metric.

        :param register: callback taking ``(name, factory, *, description="")``.
        """
