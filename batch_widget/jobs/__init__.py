"""Many videos as one job: a DataFrame in, batches within the account's limits, a DataFrame out.

:func:`submit` validates a table of assets (naming the rows of every problem, before any
request), plans it into chunks of at most 1,000 requests and 2,000 content hours, and returns a
:class:`Job` at once; its scheduler keeps at most 5 batches active on the account and records
every create in a manifest, so re-running the cell submits nothing twice.

One module per concern:

- ``rows``: DataFrame rows → checked requests, chunk planning (pure pandas, no event loop);
- ``manifest``: the job's typed record (rows, uploads, chunks, limits) and its file: format,
  version, journal, atomic writes;
- ``lock``: one process at a time per manifest;
- ``record``: the job's record in this process: the manifest under its lock (the one writer),
  rows planned into chunks, rows waiting for uploads;
- ``job``: the scheduler on the event loop and the user's actions: cancel / resolve / resubmit /
  retry_uploads, results as one frame;
- ``snapshot``: what the job looks like at one moment (what its listeners receive);
- ``creating``: one chunk's create, and the recovery of a create whose answer was lost;
- ``uploads``: the upload stage (files and URLs become ready assets, then rows);
- ``results``: results fetched as batches end and kept on disk; the newest outcome of each row
  joined back onto the input rows;
- ``submission``: ``submit`` and ``resume_job`` (and the check both they and ``plan`` start from), and
  the live jobs of this process;
- ``limits``: how a job spends the account, its budget included; ``budget``: the budget's rules;
- ``plan``: what ``submit`` would send, with its content hours, before anything is sent;
- ``usage``: what a job used (content hours, tokens, items not billed).
"""

from .creating import UncertainCreateError
from .job import Job, JobListener
from .limits import Limits
from .lock import JobLockedError
from .manifest import DEFAULT_MANIFEST, MANIFEST_FORMAT, Chunk, Manifest, ManifestError, Row, Upload
from .plan import JobPlan, plan
from .rows import Prepared, PreparedRow, plan_chunks, prepare_requests, stable_custom_id
from .snapshot import JobSnapshot
from .submission import LiveJobs, live_jobs, resume_job, submit
from .uploads import UploadCounts

__all__ = [
    "DEFAULT_MANIFEST",
    "MANIFEST_FORMAT",
    "Chunk",
    "Job",
    "JobListener",
    "JobLockedError",
    "JobPlan",
    "JobSnapshot",
    "Limits",
    "LiveJobs",
    "Manifest",
    "ManifestError",
    "Prepared",
    "PreparedRow",
    "Row",
    "UncertainCreateError",
    "Upload",
    "UploadCounts",
    "live_jobs",
    "plan",
    "plan_chunks",
    "prepare_requests",
    "resume_job",
    "stable_custom_id",
    "submit",
]
