"""The mlflow_server role over a server's life (scenario molecule/mlflow_server):
MLflow 3.16.1 from the package index as a systemd service (prepare.yml), then
upgraded and switched to docker mode in one converge."""

from __future__ import annotations

import json
import time

import pytest
from conftest import LOG_RUN, READ_RUN, curl, kept_alive_ms, q, scenario, uvicorn_workers, wait_healthy
from conftest import mlflow_python as python

LAB = scenario()
PORT = int(LAB.var("mls-server", "mlflow_stack_mlflow_port"))
PUBLIC = LAB.var("mls-server", "mlflow_stack_public_name")
NETWORK = LAB.var("mls-server", "mlflow_server_docker_network")
CONTAINER = "mlflow-server"
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


@pytest.fixture(scope="module")
def run(client, url):
    return python(client, url, LOG_RUN)


def inspect(server, name=CONTAINER):
    return json.loads(server.check_output(f"docker inspect {q(name)}"))[0]


def wait_container_healthy(server, timeout=240):
    deadline = time.time() + timeout
    state = {}
    while time.time() < deadline:
        state = inspect(server)["State"]
        if state.get("Running") and state.get("Health", {}).get("Status") == "healthy":
            return state
        time.sleep(3)
    raise AssertionError(f"{CONTAINER} not healthy within {timeout}s: {state}")


def psql(lab, sql):
    return lab.host("mls-db").check_output(f"runuser -u postgres -- psql -X -d mlflow -Atc {q(sql)}")


def test_engine_settings_from_variables(lab, server):
    setting = {
        name: lab.var("mls-server", f"docker_engine_{name}")
        for name in ("log_max_size", "log_max_file", "live_restore", "daemon_options")
    }
    info = json.loads(server.check_output("docker info --format '{{json .}}'"))
    assert info["LiveRestoreEnabled"] is setting["live_restore"] is False
    assert info["LoggingDriver"] == "json-file"
    assert info["Labels"] == setting["daemon_options"]["labels"]
    daemon = json.loads(server.file("/etc/docker/daemon.json").content_string)
    expected = {"max-size": setting["log_max_size"], "max-file": str(setting["log_max_file"])}
    assert daemon["log-opts"] == expected
    assert expected != {"max-size": "20m", "max-file": "5"}, "the scenario must differ from the defaults"


def test_container_healthy_non_root_with_restart_policy(server):
    wait_container_healthy(server)
    container = inspect(server)
    uid = server.user("mlflow").uid
    assert container["Config"]["User"] == f"{uid}:{server.group('mlflow').gid}"
    assert uid != 0
    assert server.check_output(f"docker exec {CONTAINER} id -u") == str(uid)
    host = container["HostConfig"]
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["Memory"] == 3 * 1024**3
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "50m", "max-file": "5"}}


def test_image_tag_carries_the_version_and_holds_no_build_tools(server):
    image = inspect(server)["Config"]["Image"]
    assert image.startswith("mlflow-vm/mlflow:3.17.2-")
    check = (
        "import importlib.util, os, shutil; print(importlib.util.find_spec('pip') is None, "
        "os.path.exists('/wheels'), shutil.which('gcc') is None)"
    )
    out = server.check_output(
        f"docker run --rm --network none --entrypoint /opt/mlflow/bin/python {q(image)} -c {q(check)}"
    )
    assert out == "True False True"
    assert inspect(server, image)["Config"]["Healthcheck"]["Test"][-1] == "--health"


def test_secrets_stay_out_of_inspect_and_command_lines(lab, server):
    password = lab.secret("pg_password")
    s3_secret = lab.secret("s3_secret_key")
    assert password not in server.check_output(f"docker inspect {CONTAINER}")
    assert s3_secret not in server.check_output(f"docker inspect {CONTAINER}")
    assert password not in server.check_output("ps -eo args")
    env = server.file("/etc/mlflow/mlflow.env")
    assert (env.user, env.group, env.mode) == ("root", "mlflow", 0o640)
    assert f"PGPASSWORD={password}" in env.content_string


def test_reachable_only_on_the_host_address(lab, server, client, url):
    """Bridge: published on the host's address only; host network: MLflow
    itself listens there only."""
    config = inspect(server)["HostConfig"]
    if NETWORK == "host":
        assert config["NetworkMode"] == "host"
        listening = server.check_output(f"ss -Htln 'sport = :{PORT}'").splitlines()
        assert [line.split()[3] for line in listening] == [f"{lab.ip('mls-server')}:{PORT}"]
    else:
        assert config["PortBindings"] == {
            "5000/tcp": [{"HostIp": lab.ip("mls-server"), "HostPort": str(PORT)}]
        }
    assert curl(client, f"{url}/health") == "200"


def test_a_run_lands_in_postgresql_and_the_bucket(lab, client, url, run):
    assert run["artifact_uri"].startswith("mlflow-artifacts:/"), "artifacts must be proxied by the server"
    back = python(client, url, READ_RUN, run["run_id"])
    assert back["status"] == "FINISHED"
    assert back["params"] == {"alpha": "0.5", "model": "ridge"}
    assert back["metrics"]["loss"] == pytest.approx(0.2)
    assert back["loss_history"] == 5
    assert back["artifact"] == "hello from the client"
    assert psql(lab, f"SELECT status FROM runs WHERE run_uuid = '{run['run_id']}'") == "FINISHED"
    key = f"lab-artifacts/{run['experiment_id']}/{run['run_id']}/artifacts/notes/hello.txt"
    assert lab.s3("mls-s3").get_object(Bucket="mlflow", Key=key)["Body"].read() == b"hello from the client"


def test_the_switch_from_systemd_keeps_earlier_runs(server, client, url):
    """prepare.yml ran MLflow as a systemd service and logged a run; converge switched to docker."""
    before = json.loads(client.file("/var/tmp/systemd-run.json").content_string)
    back = python(client, url, READ_RUN, before["run_id"], "notes/systemd.txt")
    assert back["params"] == {"mode": "systemd"}
    assert back["artifact"] == "logged under systemd"
    assert not server.file("/etc/systemd/system/mlflow-server.service").exists
    assert server.run("systemctl is-active mlflow-server").stdout.strip() != "active"


def count(host, command):
    return int(host.check_output(command) or 0)


def test_the_upgrade_backed_up_and_migrated_once_with_no_secret_on_a_command_line(
    lab, server, db, client, url
):
    """3.16.1 -> 3.17.2 in converge (the idempotence run after it changed
    nothing): one backup, one migration, each named in the migration log;
    the first install's pre-migration dump went once the upgrade's migration
    worked (the upgrade's stays until the next); the samplers prepare.yml
    started saw every command line on the server and the database host
    meanwhile, and no secret among them."""
    for host in (server, db):
        host.check_output("touch /tmp/ps-stop; sleep 1")
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
    # The first install's migration (an empty database), then the upgrade's.
    log = server.file(MIGRATIONS).content_string.splitlines()
    assert len(log) == 2, log
    assert " none -> 3.16.1" in log[0], log
    assert " 3.16.1 -> 3.17.2" in log[1], log
    first, backup = (line.split(" backup=")[1] for line in log)
    assert backup.endswith(".pre-migration.dump"), backup
    assert db.file(backup).is_file, backup
    assert not db.file(first).exists, "the first install's dump outlived the next successful migration"
    dumps = db.check_output(f"ls -1 {BACKUPS}").split()
    assert dumps == [backup.rsplit("/", 1)[1]], "a backup without a migration"
    assert server.file("/var/lib/mlflow/schema-version").content_string.strip() == "3.17.2"
    assert client.check_output(f"curl -sf {q(url + '/version')}") == "3.17.2"


def test_daily_backups_never_prune_the_dump_a_rollback_needs(lab, server, db):
    """The rollback command printed for the upgrade names its pre-migration
    dump: however many scheduled backups run after it (keep + 1 here), that
    dump stays, and the scheduled ones are pruned to keep."""
    keep = lab.var("mls-db", "postgresql_backup_keep")
    backup = server.file(MIGRATIONS).content_string.splitlines()[-1].split(" backup=")[1]
    # The script the timer's service runs, as its user (systemd would refuse
    # more than 5 starts of the service in 10 s).
    for _ in range(keep + 1):
        db.check_output("runuser -u postgres -- /usr/local/sbin/postgresql-backup")
    dumps = db.check_output(f"ls -1 {BACKUPS}").split()
    assert backup.rsplit("/", 1)[1] in dumps, "a daily backup pruned the pre-migration dump"
    assert len([d for d in dumps if not d.endswith(".pre-migration.dump")]) == keep, dumps


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


def test_killed_container_restarts_without_data_loss(server, client, url, run):
    before = inspect(server)["State"]["Pid"]
    server.check_output(f"kill -KILL {before}")
    deadline = time.time() + 90
    while time.time() < deadline:
        state = inspect(server)["State"]
        if state["Running"] and state["Pid"] not in (0, before):
            break
        time.sleep(1)
    assert inspect(server)["RestartCount"] >= 1, "the engine did not restart the crashed container"
    wait_container_healthy(server)
    wait_healthy(client, url)
    assert python(client, url, READ_RUN, run["run_id"])["artifact"] == "hello from the client"


def test_engine_restart_brings_mlflow_back(server, client, url, run):
    """live-restore is off here: the engine's restart stops the container,
    and the restart policy starts it again (a new start, a new process)."""
    before = inspect(server)["State"]
    server.check_output("systemctl restart docker")
    wait_container_healthy(server)
    after = inspect(server)["State"]
    assert after["StartedAt"] != before["StartedAt"], "the container did not go down with the engine"
    assert after["Pid"] != before["Pid"]
    wait_healthy(client, url)
    assert python(client, url, READ_RUN, run["run_id"])["artifact"] == "hello from the client"
