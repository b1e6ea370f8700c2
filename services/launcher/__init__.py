"""The launcher service: run requests from Kafka become Kubernetes Jobs; runs whose Job failed or
vanished get a FAIL/ABORT event.

Entry point for the CLI: `run_launcher(settings)` (`provgraph launcher`). Layout: `jobs.py` (request
→ Job manifest, pure), `kube.py` (the Kubernetes API, errors translated), `handlers.py` (the batch
handler), `watcher.py` (Job watch → reports), `reports.py` (the launcher's events), `app.py`
(broker + app assembly).
"""

from provgraph.services.launcher.app import create_app, run_launcher
from provgraph.services.launcher.jobs import build_job, job_name

__all__ = ["build_job", "create_app", "job_name", "run_launcher"]
