"""The whole stack (scenario molecule/stack, also the lab): site.yml ends with the verification."""

from __future__ import annotations

import json

import pytest
from conftest import q

NAME = "mlflow.lab.test"


@pytest.fixture(scope="module")
def report(lab):
    return json.loads((lab.ephemeral / "verify" / "report.json").read_text())


def psql(lab, sql):
    return lab.host("stk-db").check_output(f"runuser -u postgres -- psql -X -d mlflow -Atc {q(sql)}")


def test_verification_passed_every_check_through_the_front_door(report):
    assert report["tracking_uri"] == f"https://{NAME}"
    names = [c["name"] for c in report["checks"]]
    # The front-door checks run too (tests/test_mlflow_verify.py covers the rest of the list).
    assert names[:3] == ["server answers", "TLS verified", "credentials required"]
    assert len(names) == 9
    assert report["ok"] is True, report["failed"]


def test_run_and_model_version_are_in_postgresql(lab, report):
    assert psql(lab, f"SELECT status FROM runs WHERE run_uuid = '{report['run_id']}'") == "FINISHED"
    sql = (
        "SELECT count(*) FROM model_versions WHERE name = 'mlflow-vm-verification' "
        f"AND version = {int(report['model_version'])} AND run_id = '{report['run_id']}'"
    )
    assert psql(lab, sql) == "1"
    params = psql(lab, f"SELECT key FROM params WHERE run_uuid = '{report['run_id']}' ORDER BY key").split()
    assert params == ["cv_folds", "dataset", "max_depth", "n_estimators"]


def test_artifacts_and_model_are_in_the_bucket(lab, report):
    s3 = lab.s3("stk-s3")
    run_prefix = f"artifacts/{report['experiment_id']}/{report['run_id']}/artifacts/evaluation/"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="mlflow", Prefix=run_prefix).get("Contents", [])}
    assert keys == {
        run_prefix + n for n in ("confusion_matrix.png", "feature_importance.csv", "roc_curve.png")
    }
    experiment = s3.list_objects_v2(Bucket="mlflow", Prefix=f"artifacts/{report['experiment_id']}/")
    assert any(o["Key"].endswith("/MLmodel") for o in experiment.get("Contents", [])), "no logged model in S3"


def test_one_server_per_install_mode(lab):
    assert lab.host("stk-ml1").service("mlflow-server").is_running
    ml2 = lab.host("stk-ml2")
    assert not ml2.file("/etc/systemd/system/mlflow-server.service").exists
    assert ml2.check_output("docker inspect -f '{{.State.Health.Status}}' mlflow-server") == "healthy"


def test_the_proxy_spread_the_verification_over_both_servers(lab):
    log = lab.host("stk-proxy").check_output("cat /var/log/nginx/mlflow.access.log")
    for server in ("stk-ml1", "stk-ml2"):
        assert f"upstream={lab.ip(server)}:" in log, f"no request reached {server}"
