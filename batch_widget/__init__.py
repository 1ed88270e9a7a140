"""batch_widget: run and watch TwelveLabs batch video analysis from a notebook.

The public face of the package: a short list of names, nothing defined here.
"""

from ._version import VERSION as __version__
from .account import list_batches, list_batches_blocking
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
