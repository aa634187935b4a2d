"""The stack lab's stores as its hosts see them: the database on stk-db,
the bucket from an MLflow host."""

from __future__ import annotations

import json

from labtest.hosts import program
from labtest.lab import Lab, q

# The CA an MLflow server checks S3 with.
S3_CA = "/etc/mlflow/s3-ca.pem"


def psql(lab: Lab, sql: str) -> str:
    """One SQL statement in MLflow's database, as postgres on stk-db; its rows, unaligned."""
    return lab.host("stk-db").check_output(f"runuser -u postgres -- psql -X -d mlflow -Atc {q(sql)}")


def bucket_keys(lab: Lab, prefix: str) -> set[str]:
    """The bucket's keys under `prefix`, listed on stk-ml1 with its venv's boto3
    (programs/list_keys.py): the S3 API answers only the MLflow hosts (the
    controller is refused), over HTTPS checked against the server's CA."""
    out = lab.host("stk-ml1").check_output(
        f"KEY={q(lab.secret('s3_access_key'))} SECRET={q(lab.secret('s3_secret_key'))} CA={S3_CA} "
        f"/opt/mlflow/venvs/3.17.2/bin/python -c {q(program('list_keys'))} "
        f"https://{lab.ip('stk-s3')}:8333 {q(prefix)}"
    )
    return set(json.loads(out))
