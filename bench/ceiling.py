"""The in-process ceiling: bench/load.py's iteration called on MLflow's SQL
store in this process, no HTTP, one thread (what one core can do at best).

Runs wherever MLflow is installed: the controller's venv (SQLite in a scratch
folder) or an MLflow host's venv against the lab's PostgreSQL (--env-file:
the server's environment file, read as its entry point reads it, so the
password stays off the command line). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from benchlib import load_env_file


def store_uri(args: argparse.Namespace) -> tuple[str, str]:
    if args.env_file:
        load_env_file(args.env_file)
        return os.environ["MLFLOW_BACKEND_STORE_URI"], "postgresql"
    work = tempfile.mkdtemp(prefix="bench-ceiling-")
    return f"sqlite:///{work}/mlflow.db", "sqlite"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", help="an MLflow server's environment file (its backend store)")
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()

    from mlflow.entities import Metric, Param, RunStatus, RunTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri, kind = store_uri(args)
    store = SqlAlchemyStore(uri, tempfile.mkdtemp(prefix="bench-ceiling-art-"))
    experiment = store.create_experiment(f"bench-ceiling-{time.time_ns()}")
    runs = 0
    deadline = time.monotonic() + args.seconds
    started = time.monotonic()
    while time.monotonic() < deadline:
        now = int(time.time() * 1000)
        run = store.create_run(experiment, user_id="bench", start_time=now, tags=[], run_name=None)
        run_id = run.info.run_id
        store.log_batch(
            run_id,
            metrics=[Metric(f"m{i}", i * 0.5, now, 0) for i in range(10)],
            params=[Param(f"p{i}", str(i)) for i in range(10)],
            tags=[RunTag(f"t{i}", "x") for i in range(3)],
        )
        for epoch in range(5):
            store.log_metric(run_id, Metric("loss", 1.0 / (epoch + 1), now, epoch))
        store.search_runs([experiment], filter_string="", run_view_type=1, max_results=10)
        store.update_run_info(run_id, RunStatus.FINISHED, int(time.time() * 1000), None)
        runs += 1
    elapsed = time.monotonic() - started
    print(json.dumps({"store": kind, "runs_per_s": runs / elapsed, "requests_per_s": 9 * runs / elapsed}))


if __name__ == "__main__":
    main()
