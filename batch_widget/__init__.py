"""batch_widget: run and watch TwelveLabs batch video analysis from a notebook.

The public face of the package: a short list of names, nothing defined here.

Every name is imported on first use (PEP 562), so ``import batch_widget`` costs almost nothing
and the ``batch-widget`` command starts without the widget stack or pandas; ``bw.watch``,
``bw.submit``, ``bw.Job`` ... behave exactly as if imported eagerly. Each name's module is in
``_WHERE`` below; the ``TYPE_CHECKING`` block says the same to type checkers and editors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _viewing
from ._version import VERSION as __version__

if TYPE_CHECKING:
    from .account import list_batches, list_batches_blocking
    from .batch_watch import BatchWatch
    from .client import BatchClient, RetryPolicy
    from .errors import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        BatchWidgetError,
        ConfigurationError,
        ConflictError,
        InvalidInputError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        ResultLineError,
        ServerError,
        TransportError,
    )
    from .frames import join_results, results_to_frame, segments_to_frame, to_polars
    from .job_widget import JobWidget
    from .jobs import Job, JobLockedError, JobPlan, ManifestError, UncertainCreateError, plan, resume_job, submit
    from .models import Batch, BatchStatus, CreatedBatch, ItemStatus, ResultLine, WebhookDelivery
    from .poller import BatchPoller, Schedule
    from .widget import BatchWidget, watch

#: where each public name lives (its module, relative to this package)
_WHERE: dict[str, str] = {
    **dict.fromkeys(("list_batches", "list_batches_blocking"), ".account"),
    "BatchWatch": ".batch_watch",
    **dict.fromkeys(("BatchClient", "RetryPolicy"), ".client"),
    **dict.fromkeys(
        (
            "APIConnectionError", "APIError", "APITimeoutError", "AuthenticationError", "BadRequestError",
            "BatchWidgetError", "ConfigurationError", "ConflictError", "InvalidInputError", "NotFoundError",
            "PermissionDeniedError", "RateLimitError", "ResultLineError", "ServerError", "TransportError",
        ),
        ".errors",
    ),
    **dict.fromkeys(("join_results", "results_to_frame", "segments_to_frame", "to_polars"), ".frames"),
    "JobWidget": ".job_widget",
    **dict.fromkeys(("Job", "JobLockedError", "JobPlan", "ManifestError", "UncertainCreateError", "plan",
                     "resume_job", "submit"), ".jobs"),
    **dict.fromkeys(("Batch", "BatchStatus", "CreatedBatch", "ItemStatus", "ResultLine", "WebhookDelivery"),
                    ".models"),
    **dict.fromkeys(("BatchPoller", "Schedule"), ".poller"),
    **dict.fromkeys(("BatchWidget", "watch"), ".widget"),
}  # fmt: skip

# a Job is drawn by the widget layer, which registers its view when imported: on first display
_viewing.add_view_module(__name__ + ".job_widget")
_viewing.add_view_module(__name__ + ".widget")  # and a BatchWatch (bw.watch() imports it anyway)


def __getattr__(name: str) -> Any:
    """A public name (imported from its module on first use), or a submodule (``bw.jobs``)."""
    where = _WHERE.get(name)
    if where is not None:
        value = getattr(importlib.import_module(where, __name__), name)
    elif not name.startswith("__"):
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise  # the submodule exists but needs something missing: say that
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once: later lookups never come back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchClient",
    "BatchPoller",
    "BatchStatus",
    "BatchWatch",
    "BatchWidget",
    "BatchWidgetError",
    "ConfigurationError",
    "ConflictError",
    "CreatedBatch",
    "InvalidInputError",
    "ItemStatus",
    "Job",
    "JobLockedError",
    "JobPlan",
    "JobWidget",
    "ManifestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResultLine",
    "ResultLineError",
    "RetryPolicy",
    "Schedule",
    "ServerError",
    "TransportError",
    "UncertainCreateError",
    "WebhookDelivery",
    "__version__",
    "join_results",
    "list_batches",
    "list_batches_blocking",
    "plan",
    "results_to_frame",
    "resume_job",
    "segments_to_frame",
    "submit",
    "to_polars",
    "watch",
]
