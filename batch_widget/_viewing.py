"""Which live view shows an object of a lower layer, so that the lower layer imports no widget.

A :class:`~batch_widget.jobs.Job` is displayed as a widget, yet jobs know nothing of widgets:
the widget layer registers a view factory for the type (``register_view``), and the job's
``_ipython_display_`` asks for its view (``view_of``). One view per object, made on first use.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["forget_view", "register_view", "view_of"]

_FACTORIES: dict[type, Callable[[Any], Any]] = {}
_VIEWS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def register_view(kind: type, factory: Callable[[Any], Any]) -> None:
    """Show objects of ``kind`` (and its subclasses) with ``factory(obj)``."""
    _FACTORIES[kind] = factory


def view_of(obj: Any) -> Any:
    """The one view of ``obj``, made by its type's registered factory on first use."""
    view = _VIEWS.get(obj)
    if view is None:
        factory = next((_FACTORIES[k] for k in type(obj).__mro__ if k in _FACTORIES), None)
        if factory is None:
            raise LookupError(
                f"no view is registered for {type(obj).__name__}; import batch_widget (which loads its widgets)"
            )
        view = _VIEWS[obj] = factory(obj)
    return view


def forget_view(obj: Any) -> None:
    """Let go of ``obj``'s view (its displays stay as they are), so neither is kept alive by the other."""
    _VIEWS.pop(obj, None)
