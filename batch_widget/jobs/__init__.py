"""Many videos as one job: a DataFrame in, batches within the account's limits, a DataFrame out.

:func:`submit` validates a table of assets (naming the rows of every problem, before any
request), plans it into chunks of at most 1,000 requests and 2,000 content hours, and returns a
:class:`Job` at once; its scheduler keeps at most 5 batches active on the account and records
every create in a manifest, so re-running the cell submits nothing twice.

One module per concern:

- ``rows``: DataFrame rows → checked requests, chunk planning (pure pandas, no event loop);
- ``manifest``: the on-disk record, its format and version, atomic writes;
- ``job``: the scheduler, cancel / resolve / resubmit, results as one frame;
- ``snapshot``: what the job looks like at one moment (what its listeners receive);
- ``creating``: one chunk's create, and the recovery of a create whose answer was lost;
- ``uploads``: the upload stage (files and URLs become ready assets, then rows);
- ``recovery``: matching a create whose answer was lost to the account's batches;
- ``results``: each row's newest outcome joined back onto the input rows;
- ``registry``: the live jobs of this process, by manifest path;
- ``submission``: ``submit`` and ``resume_job``.
"""

from .job import Job, JobListener, Uncertain, UncertainCreateError, live_jobs
from .manifest import DEFAULT_MANIFEST, MANIFEST_FORMAT, Chunk, Manifest
from .rows import Prepared, PreparedRow, plan_chunks, prepare_requests, stable_custom_id
from .snapshot import JobSnapshot
from .submission import resume_job, submit
from .uploads import UploadCounts

__all__ = [
    "DEFAULT_MANIFEST",
    "MANIFEST_FORMAT",
    "Chunk",
    "Job",
    "JobListener",
    "JobSnapshot",
    "Manifest",
    "Prepared",
    "PreparedRow",
    "Uncertain",
    "UncertainCreateError",
    "UploadCounts",
    "live_jobs",
    "plan_chunks",
    "prepare_requests",
    "resume_job",
    "stable_custom_id",
    "submit",
]
