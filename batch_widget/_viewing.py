"""Which live view shows an object of a lower layer, so that the lower layer imports no widget.

A :class:`~batch_widget.jobs.Job` or a :class:`~batch_widget.batch_watch.BatchWatch` is displayed
as a widget, yet neither knows anything of widgets: the widget layer registers a view factory for
the type (``register_view``), and the object's display hooks ask for its view (``view_of``). One
view per object, made on first use. :class:`Viewed` holds those hooks: ``_ipython_display_``
(Jupyter, Notebook 7, Colab, VS Code: IPython's display) and ``_display_`` (marimo's display
protocol, which renders the widget it returns), and ``widget``, the view itself.

The package's public face names the modules that register views (``add_view_module``) instead of
importing them: the widget stack is loaded on the first display, not by ``import batch_widget``
(the ``batch-widget`` command never pays for it).
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["Viewed", "add_view_module", "forget_view", "register_view", "view_of"]

_FACTORIES: dict[type, Callable[[Any], Any]] = {}
_MODULES: list[str] = []  # modules that register views, not imported yet
_VIEWS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def register_view(kind: type, factory: Callable[[Any], Any]) -> None:
    """Show objects of ``kind`` (and its subclasses) with ``factory(obj)``."""
    _FACTORIES[kind] = factory


def add_view_module(name: str) -> None:
    """Import the module ``name`` (which calls ``register_view``) when a view is first asked for."""
    if name not in _MODULES:
        _MODULES.append(name)


def _factory(kind: type) -> Callable[[Any], Any] | None:
    return next((_FACTORIES[k] for k in kind.__mro__ if k in _FACTORIES), None)


def view_of(obj: Any) -> Any:
    """The one view of ``obj``, made by its type's registered factory on first use."""
    view = _VIEWS.get(obj)
    if view is None:
        factory = _factory(type(obj))
        while factory is None and _MODULES:
            importlib.import_module(_MODULES[0])
            _MODULES.pop(0)
            factory = _factory(type(obj))
        if factory is None:
            raise LookupError(f"no view is registered for {type(obj).__name__}; is its widget module importable?")
        view = _VIEWS[obj] = factory(obj)
    return view


def forget_view(obj: Any, view: Any = None) -> Any:
    """Let go of ``obj``'s view (its displays stay as they are), so neither is kept alive by the other.

    With ``view``, only if that is ``obj``'s view (a view closing itself). Returns the view let go
    of, or None.
    """
    if view is not None and _VIEWS.get(obj) is not view:
        return None
    return _VIEWS.pop(obj, None)


class Viewed:
    """Displayed as its registered view, in every front end; the object itself imports no widget."""

    @property
    def widget(self) -> Any:
        """The live view of this object (one per object, made on first use; every display shows it)."""
        return view_of(self)

    def _ipython_display_(self, **kwargs: Any) -> None:
        """IPython's display (JupyterLab, Notebook 7, Colab, VS Code): the view's displays."""
        self.widget._ipython_display_(**kwargs)

    def _display_(self) -> Any:
        """marimo's display protocol: marimo renders the object this returns (the widget)."""
        return self.widget
