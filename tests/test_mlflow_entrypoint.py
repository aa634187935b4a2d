"""The server's entry point (roles/mlflow_server/files/mlflow-entrypoint.py)
against a real MLflow schema (SQLite here; PostgreSQL in the scenarios): the
`schema` answer the role decides migrations on."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from conftest import PROJECT

ENTRYPOINT = PROJECT / "roles/mlflow_server/files/mlflow-entrypoint.py"


def entrypoint(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env_file = tmp_path / "mlflow.env"
    env_file.write_text(f"MLFLOW_BACKEND_STORE_URI=sqlite:///{tmp_path / 'mlflow.db'}\n")
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), *args],
        env={"MLFLOW_ENV_FILE": str(env_file), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def schema(tmp_path) -> dict:
    result = entrypoint(tmp_path, "schema")
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_schema_tells_behind_at_head_and_unknown(tmp_path):
    fresh = schema(tmp_path)["store"]
    assert fresh["current"] is None
    assert fresh["known"]
    assert fresh["head"]

    migrated = entrypoint(tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    assert schema(tmp_path)["store"] == {"current": fresh["head"], "head": fresh["head"], "known": True}

    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    newer = schema(tmp_path)["store"]
    assert newer["current"] == "ffffffffffff"
    assert not newer["known"]
