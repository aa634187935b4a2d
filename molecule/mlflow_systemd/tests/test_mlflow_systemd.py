"""Behaviour of the mlflow_server role in systemd mode (scenario molecule/mlflow_systemd)."""

from __future__ import annotations

import json
import re
import time

import pytest
from conftest import (
    LOG_RUN,
    PROJECT,
    READ_RUN,
    curl,
    kept_alive_ms,
    q,
    scenario,
    uvicorn_workers,
    wait_healthy,
)
from conftest import mlflow_python as python

LAB = scenario()
PORT = int(LAB.var("mls-server", "mlflow_stack_mlflow_port"))
PUBLIC = LAB.var("mls-server", "mlflow_stack_public_name")
BACKUPS = "/var/backups/postgresql/mlflow"
MIGRATIONS = "/var/lib/mlflow/migrations.log"


@pytest.fixture(scope="module")
def server(lab):
    return lab.host("mls-server")


@pytest.fixture(scope="module")
def client(lab):
    return lab.host("mls-client")


@pytest.fixture(scope="module")
def db(lab):
    return lab.host("mls-db")


@pytest.fixture(scope="module")
def url(lab):
    return f"http://{lab.ip('mls-server')}:{PORT}"


def main_pid(server):
    return server.check_output("systemctl show -p MainPID --value mlflow-server")


@pytest.fixture(scope="module")
def run(client, url):
    return python(client, url, LOG_RUN)


def test_service_active_enabled_as_service_user(server):
    service = server.service("mlflow-server")
    assert service.is_running
    assert service.is_enabled
    assert server.check_output(f"ps -o user= -p {main_pid(server)}") == "mlflow"


def test_secrets_only_in_private_env_file(server, lab):
    env = server.file("/etc/mlflow/mlflow.env")
    # Read by the entry point as the service user (as in docker mode).
    assert (env.user, env.group, env.mode) == ("root", "mlflow", 0o640)
    password = lab.secret("pg_password")
    assert f"PGPASSWORD={password}" in env.content_string
    assert password not in server.check_output("systemctl show mlflow-server")
    assert password not in server.check_output("ps -eo args")


def test_unit_is_as_hardened_as_the_readme_says(server):
    readme = (PROJECT / "roles/mlflow_server/README.md").read_text()
    claimed = float(re.search(r"`systemd-analyze security`: ([0-9.]+)", readme).group(1))
    out = server.check_output("systemd-analyze security mlflow-server")
    score = float(re.search(r"Overall exposure level for mlflow-server.service: ([0-9.]+)", out).group(1))
    assert score <= claimed, out.splitlines()[-1]


def test_health_from_another_host(client, url):
    assert curl(client, f"{url}/health") == "200"


@pytest.mark.parametrize(
    ("host", "status"), [(PUBLIC, "200"), (f"{PUBLIC}:443", "200"), ("evil.example.com", "403")]
)
def test_host_header_check_allows_the_public_name(client, url, host, status):
    api = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
    assert curl(client, api, "-H", q(f"Host: {host}")) == status


@pytest.mark.parametrize(
    ("origin", "status"), [(f"https://{PUBLIC}", "200"), ("https://evil.example.com", "403")]
)
def test_cors_allows_the_public_origin(client, url, origin, status):
    name = f"cors-{int(time.time() * 1000)}"
    api = f"{url}/api/2.0/mlflow/experiments/create"
    options = ["-X", "POST", "-H", q("Content-Type: application/json"), "-H", q(f"Origin: {origin}")]
    assert curl(client, api, *options, "-d", q(json.dumps({"name": name}))) == status


def test_configured_number_of_workers(lab, server):
    assert uvicorn_workers(server) == lab.var("mls-server", "mlflow_server_workers") > 1


def test_kept_alive_connections_do_not_wait_for_delayed_acks(lab, client):
    """The proxy keeps its connections to MLflow open (nginx_proxy_upstream_keepalive):
    the role's TCP_NODELAY module must hold with asyncio's loop (this scenario's
    package list has no uvloop), or each reused request stalls >= 40 ms."""
    assert kept_alive_ms(client, lab.ip("mls-server"), PORT, PUBLIC) < 20


def test_prometheus_metrics(client, url):
    body = client.check_output(f"curl -sf {q(url + '/metrics')}")
    assert "mlflow_http_request" in body or "flask_http_request" in body


def test_run_logged_from_another_host(client, url, run):
    assert run["artifact_uri"].startswith("mlflow-artifacts:/"), "artifacts must be proxied by the server"
    back = python(client, url, READ_RUN, run["run_id"])
    assert back["status"] == "FINISHED"
    assert back["params"] == {"alpha": "0.5", "model": "ridge"}
    assert back["metrics"]["loss"] == pytest.approx(0.2)
    assert back["loss_history"] == 5
    assert back["artifact"] == "hello from the client"


def test_artifact_object_in_bucket(lab, run):
    s3 = lab.s3("mls-s3")
    key = f"lab-artifacts/{run['experiment_id']}/{run['run_id']}/artifacts/notes/hello.txt"
    assert s3.get_object(Bucket="mlflow", Key=key)["Body"].read() == b"hello from the client"


def test_run_in_postgresql(db, run):
    sql = f"SELECT status FROM runs WHERE run_uuid = '{run['run_id']}'"
    assert db.check_output(f"runuser -u postgres -- psql -X -p 5432 -d mlflow -Atc {q(sql)}") == "FINISHED"


def test_killed_server_restarts_without_data_loss(server, client, url, run):
    before = main_pid(server)
    server.check_output("systemctl kill -s KILL mlflow-server")
    deadline = time.time() + 60
    while main_pid(server) in ("0", before) and time.time() < deadline:
        time.sleep(1)
    assert main_pid(server) not in ("0", before), "systemd did not restart MLflow"
    wait_healthy(client, url)
    assert python(client, url, READ_RUN, run["run_id"])["artifact"] == "hello from the client"


def count(host, command):
    return int(host.check_output(command) or 0)


# Appends every process's command line to /tmp/ps-samples five times a second
# until /tmp/ps-stop exists.
SAMPLER = (
    "rm -f /tmp/ps-samples /tmp/ps-stop; "
    "setsid sh -c 'while [ ! -e /tmp/ps-stop ]; do ps -eww -o args >> /tmp/ps-samples; sleep 0.2; done' "
    "> /dev/null 2>&1 &"
)


def test_version_bump_backs_up_and_migrates_once(lab, server, db, client, url, run):
    dumps = f"ls -1 {BACKUPS} | wc -l"
    migrations = f"wc -l < {MIGRATIONS}"
    dumps_before, migrations_before = count(db, dumps), count(server, migrations)
    bump = {"mlflow_stack_mlflow_version": "3.17.2", "mlflow_server_install_source": "wheelhouse"}

    # No secret on any command line on any host while site.yml converges and migrates.
    for host in (server, db):
        host.check_output(SAMPLER)
    first = lab.playbook("site.yml", **bump)
    for host in (server, db):
        host.check_output("touch /tmp/ps-stop; sleep 1")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert count(server, "grep -c 'mlflow-entrypoint migrate' /tmp/ps-samples || true") > 0, (
        "the sampler did not run during the migration"
    )
    # ps prints its header once a sample: both samplers sampled all along.
    for host in (server, db):
        samples = count(host, "grep -c '^COMMAND$' /tmp/ps-samples || true")
        assert samples > 10, f"{samples} samples on {host.backend.get_hostname()}"
    for host in (server, db):
        for secret in ("pg_password", "s3_secret_key"):
            hits = count(host, f"grep -c -F -- {q(lab.secret(secret))} /tmp/ps-samples || true")
            assert hits == 0, f"{secret} on a command line on {host.backend.get_hostname()}"
    assert count(db, dumps) == dumps_before + 1, "exactly one backup before the migration"
    assert count(server, migrations) == migrations_before + 1, "exactly one migration"
    assert "3.16.1 -> 3.17.2" in server.file(MIGRATIONS).content_string.splitlines()[-1]
    assert server.file("/var/lib/mlflow/schema-version").content_string.strip() == "3.17.2"
    assert client.check_output(f"curl -sf {q(url + '/version')}") == "3.17.2"
    assert python(client, url, READ_RUN, run["run_id"])["artifact"] == "hello from the client"

    # Again, the servers' playbook alone (the part a version reads).
    second = lab.playbook("playbooks/mlflow_server.yml", **bump)
    assert second.returncode == 0, second.stdout[-3000:]
    recap = [line for line in second.stdout.splitlines() if "changed=" in line]
    assert recap
    assert all("changed=0" in line for line in recap), "\n".join(recap)
    assert count(db, dumps) == dumps_before + 1, "no backup without a version change"
    assert count(server, migrations) == migrations_before + 1, "no migration without a version change"
