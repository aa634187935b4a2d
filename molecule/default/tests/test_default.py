"""All-in-one (scenario default): one host holds every part, verified through
its proxy, over a server's life: MLflow 3.16.1 from the package index as a
systemd service behind nginx's htpasswd (prepare.yml), then upgraded and
switched to docker mode and MLflow's auth app in one converge (check mode:
tests/test_switch_auth_app.py, after switching back)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from labtest.front_door import FrontDoor
from labtest.hosts import AS_PROXY, kept_alive_stall_ms, program, uvicorn_workers, wait_healthy
from labtest.lab import changed, q, scenario
from labtest.scan import open_ports

LAB = scenario()
PUBLIC = LAB.var("aio", "mlflow_stack_public_name")
CONTAINER = "mlflow-server"
BACKUPS = "/var/backups/postgresql/mlflow"
MIGRATIONS = "/var/lib/mlflow/migrations.log"
# MLflow itself, as the proxy reaches it (mutual TLS: AS_PROXY), as the
# auth app's admin.
DIRECT = "https://127.0.0.1:5000"
ADMIN = {"user": "admin", "password": LAB.secret("admin_password")}
AUTHORIZATION = "Basic " + base64.b64encode(f"{ADMIN['user']}:{ADMIN['password']}".encode()).decode()

REQUEST = program("request")


@pytest.fixture(scope="module")
def aio(lab):
    return lab.host("aio")


@pytest.fixture(scope="module")
def door(lab):
    return FrontDoor(lab, client="aio-outsider", proxy="aio")


def direct(aio, method: str, path: str, headers: dict, body: str | None = None) -> str:
    headers = {"Authorization": AUTHORIZATION, **headers}
    args = [method, path, json.dumps(headers), *([body] if body is not None else [])]
    return aio.check_output(f"{AS_PROXY} python3 -c {q(REQUEST)} {' '.join(q(a) for a in args)}")


@pytest.fixture(scope="module")
def systemd_run(door):
    """The run prepare.yml logged while MLflow ran as a systemd service."""
    return json.loads(door.client.file("/var/tmp/systemd-run.json").content_string)


def psql(aio, sql: str) -> str:
    """One query to MLflow's database, as postgres; its unaligned output."""
    return aio.check_output(f"runuser -u postgres -- psql -X -d mlflow -Atc {q(sql)}")


def inspect(aio, name=CONTAINER):
    return json.loads(aio.check_output(f"docker inspect {q(name)}"))[0]


def wait_container_healthy(aio, timeout=240):
    deadline = time.time() + timeout
    state = {}
    while time.time() < deadline:
        state = inspect(aio)["State"]
        if state.get("Running") and state.get("Health", {}).get("Status") == "healthy":
            return state
        time.sleep(3)
    raise AssertionError(f"{CONTAINER} not healthy within {timeout}s: {state}")


# Every secret of the lab's inventory (file names in the scenario's folder).
SECRETS = (
    "pg_password",
    "s3_secret_key",
    "ci_password",
    "admin_password",
    "flask_secret_key",
    "carol_password",
    "dave_password",
    "crypto_passphrase",
)


def count(host, command):
    return int(host.check_output(command) or 0)


def test_the_upgrade_backed_up_and_migrated_once_with_no_secret_on_a_command_line(lab, aio):
    """3.16.1 -> 3.17.2 in converge (the idempotence run after it changed
    nothing): one backup, one migration, each named in the migration log;
    the first install's pre-migration dump went once the upgrade's migration
    worked (the upgrade's stays until the next); the sampler prepare.yml
    started saw every command line on the host meanwhile, and no secret
    among them."""
    aio.check_output("touch /tmp/ps-stop; sleep 1")
    assert count(aio, "grep -c 'mlflow-entrypoint migrate' /tmp/ps-samples || true") > 0, (
        "the sampler did not run during the migration"
    )
    # ps prints its header once a sample: the sampler sampled all along.
    samples = count(aio, "grep -c '^COMMAND$' /tmp/ps-samples || true")
    assert samples > 10, f"{samples} samples"
    for secret in SECRETS:
        hits = count(aio, f"grep -c -F -- {q(lab.secret(secret))} /tmp/ps-samples || true")
        assert hits == 0, f"{secret} on a command line"
    # The first install's migration (an empty database), then the upgrade's.
    log = aio.file(MIGRATIONS).content_string.splitlines()
    assert len(log) == 2, log
    assert " none -> 3.16.1" in log[0], log
    assert " 3.16.1 -> 3.17.2" in log[1], log
    # One dump per database (the upgrade's: MLflow's and the auth app's, which
    # converge switched on).
    first, backups = (line.split(" backup=")[1].split(",") for line in log)
    assert [b.rsplit("/", 2)[1] for b in backups] == ["mlflow", "mlflow_auth"], backups
    for backup in backups:
        assert backup.endswith(".pre-migration.dump"), backup
        assert aio.file(backup).is_file, backup
    assert not [dump for dump in first if aio.file(dump).exists], (
        "the first install's dump outlived the next migration"
    )
    # Only pre-migration dumps: the daily timer (02:30 + up to 10 min) may
    # have added its own while the suite ran.
    dumps = aio.check_output(f"ls -1 {BACKUPS}").split()
    pre_migration = [d for d in dumps if d.endswith(".pre-migration.dump")]
    assert pre_migration == [backups[0].rsplit("/", 1)[1]], f"a backup without a migration: {dumps}"
    # The auth app's schema too (its own migrations).
    assert aio.file("/var/lib/mlflow/schema-version").content_string.strip() == "3.17.2+auth"
    assert direct(aio, "GET", "/version", {"Host": PUBLIC}) == "200"


def test_switching_the_auth_app_on_never_answered_without_credentials(door):
    """A client without credentials asked twice a second from prepare.yml's
    end through converge and its idempotence run: never a 200 (htpasswd in
    nginx, then MLflow's auth app)."""
    codes = door.anonymous_codes()
    assert len(codes) > 100, codes
    assert "200" not in codes, codes


def test_the_switch_from_systemd_keeps_earlier_runs(aio, door, systemd_run):
    """prepare.yml ran MLflow as a systemd service and logged a run with an
    artifact through the front door (as an htpasswd user); converge switched
    to docker and the auth app, whose admin sees it."""
    run = json.loads(door.get(f"/api/2.0/mlflow/runs/get?run_id={systemd_run['run_id']}", **ADMIN))
    assert {p["key"]: p["value"] for p in run["run"]["data"]["params"]} == {"mode": "systemd"}
    path = systemd_run["artifact_uri"].removeprefix("mlflow-artifacts:/") + "/notes/systemd.txt"
    assert door.get(f"/api/2.0/mlflow-artifacts/artifacts/{path}", **ADMIN) == "logged under systemd"
    assert not aio.file("/etc/systemd/system/mlflow-server.service").exists
    assert aio.run("systemctl is-active mlflow-server").stdout.strip() != "active"


def test_the_verification_passed_through_the_proxy(lab, aio):
    report = json.loads((lab.ephemeral / "verify" / "report.json").read_text())
    assert report["tracking_uri"] == f"https://{PUBLIC}"
    assert report["ok"] is True, report["failed"]
    names = [c["name"] for c in report["checks"]]
    assert names[:3] == ["server answers", "TLS verified", "credentials required"]
    assert psql(aio, f"SELECT status FROM runs WHERE run_uuid = '{report['run_id']}'") == "FINISHED"


def test_mlflow_listens_on_loopback_only(aio):
    """In docker mode on the host network: MLflow itself on loopback only."""
    assert inspect(aio)["HostConfig"]["NetworkMode"] == "host"
    listening = aio.check_output("ss -Htln 'sport = :5000'").split("\n")
    assert [line.split()[3] for line in listening] == ["127.0.0.1:5000"]
    assert "server 127.0.0.1:5000" in aio.check_output("cat /etc/nginx/sites-available/mlflow.conf")


def test_only_the_proxy_answers_from_outside(lab):
    assert open_ports(lab, "aio-outsider", ["aio"]) == {"aio": [80, 443]}


def test_engine_settings_from_variables(lab, aio):
    setting = {
        name: lab.var("aio", f"docker_engine_{name}")
        for name in ("log_max_size", "log_max_file", "live_restore", "daemon_options")
    }
    info = json.loads(aio.check_output("docker info --format '{{json .}}'"))
    assert info["LiveRestoreEnabled"] is setting["live_restore"] is False
    assert info["LoggingDriver"] == "json-file"
    assert info["Labels"] == setting["daemon_options"]["labels"]
    daemon = json.loads(aio.file("/etc/docker/daemon.json").content_string)
    expected = {"max-size": setting["log_max_size"], "max-file": str(setting["log_max_file"])}
    assert daemon["log-opts"] == expected
    assert expected != {"max-size": "20m", "max-file": "5"}, "the scenario must differ from the defaults"


def test_a_new_engine_gets_the_classic_image_store_and_is_never_switched_under_its_images(lab, aio):
    """docker_engine_image_store=auto on an engine the role installed: the
    classic store (Ubuntu 24.04's Docker 29 alone picks the containerd store
    for a new engine). Asked to switch it while it holds the MLflow image and
    container, the run stops at the role's checks, naming them, and changes
    nothing."""
    info = json.loads(aio.check_output("docker info --format '{{json .}}'"))
    assert info["Driver"] == "overlay2", info["Driver"]
    assert "io.containerd.snapshotter.v1" not in json.dumps(info["DriverStatus"])
    daemon = aio.file("/etc/docker/daemon.json").content_string
    run = lab.playbook(
        "playbooks/mlflow_server.yml", "--tags", "docker_engine", docker_engine_image_store="containerd"
    )
    assert run.returncode != 0
    held = f"keeps {info['Images']} images and {info['Containers']} containers in its classic image store"
    assert held in run.stdout, run.stdout[-3000:]
    assert set(changed(run, must_pass=False)) == {0}
    assert aio.file("/etc/docker/daemon.json").content_string == daemon


def test_container_healthy_non_root_with_restart_policy(aio):
    wait_container_healthy(aio)
    container = inspect(aio)
    uid = aio.user("mlflow").uid
    assert container["Config"]["User"] == f"{uid}:{aio.group('mlflow').gid}"
    assert uid != 0
    assert aio.check_output(f"docker exec {CONTAINER} id -u") == str(uid)
    host = container["HostConfig"]
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["Memory"] == 3 * 1024**3
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "50m", "max-file": "5"}}


def test_image_tag_carries_the_version_and_holds_no_build_tools(aio):
    image = inspect(aio)["Config"]["Image"]
    assert image.startswith("mlflow-vm/mlflow:3.17.2-")
    check = (
        "import importlib.util, os, shutil; print(importlib.util.find_spec('pip') is None, "
        "os.path.exists('/wheels'), shutil.which('gcc') is None)"
    )
    out = aio.check_output(
        f"docker run --rm --network none --entrypoint /opt/mlflow/bin/python {q(image)} -c {q(check)}"
    )
    assert out == "True False True"
    assert inspect(aio, image)["Config"]["Healthcheck"]["Test"][-1] == "--health"


def test_secrets_stay_out_of_inspect_and_command_lines(lab, aio):
    password = lab.secret("pg_password")
    inspected, processes = aio.check_output(f"docker inspect {CONTAINER}"), aio.check_output("ps -eo args")
    for secret in SECRETS:
        assert lab.secret(secret) not in inspected, secret
        assert lab.secret(secret) not in processes, secret
    env = aio.file("/etc/mlflow/mlflow.env")
    assert (env.user, env.group, env.mode) == ("root", "mlflow", 0o640)
    assert f"PGPASSWORD={password}" in env.content_string


def test_daily_backups_never_prune_the_dump_a_rollback_needs(lab, aio):
    """The rollback command printed for the upgrade names its pre-migration
    dump: however many scheduled backups run after it (keep + 1 here), that
    dump stays, and the scheduled ones are pruned to keep."""
    keep = lab.var("aio", "postgresql_backup_keep")
    backup = aio.file(MIGRATIONS).content_string.splitlines()[-1].split(" backup=")[1].split(",")[0]
    # The script the timer's service runs, as its user (systemd would refuse
    # more than 5 starts of the service in 10 s).
    for _ in range(keep + 1):
        aio.check_output("runuser -u postgres -- /usr/local/sbin/postgresql-backup")
    dumps = aio.check_output(f"ls -1 {BACKUPS}").split()
    assert backup.rsplit("/", 1)[1] in dumps, "a daily backup pruned the pre-migration dump"
    assert len([d for d in dumps if not d.endswith(".pre-migration.dump")]) == keep, dumps


@pytest.mark.parametrize(
    ("host", "status"), [(PUBLIC, "200"), (f"{PUBLIC}:443", "200"), ("evil.example.com", "403")]
)
def test_host_header_check_allows_the_public_name(aio, host, status):
    assert direct(aio, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", {"Host": host}) == status


@pytest.mark.parametrize(
    ("origin", "status"), [(f"https://{PUBLIC}", "200"), ("https://evil.example.com", "403")]
)
def test_cors_allows_the_public_origin(aio, origin, status):
    headers = {"Host": PUBLIC, "Origin": origin, "Content-Type": "application/json"}
    body = json.dumps({"name": f"cors-{time.time_ns()}"})
    assert direct(aio, "POST", "/api/2.0/mlflow/experiments/create", headers, body) == status


def test_configured_number_of_workers(lab, aio):
    assert uvicorn_workers(aio) == lab.var("aio", "mlflow_server_workers") > 1


def test_kept_alive_connections_do_not_wait_for_delayed_acks(aio):
    """The proxy keeps its connections to MLflow open (nginx_proxy_upstream_keepalive):
    the role's TCP_NODELAY module must hold with asyncio's loop (this scenario's
    package list has no uvloop), or each reused request stalls >= 40 ms."""
    env = f"{AS_PROXY} AUTHORIZATION={q(AUTHORIZATION)}"
    assert kept_alive_stall_ms(aio, "127.0.0.1", 5000, PUBLIC, env=env) < 20


def ask(aio, path: str) -> str:
    """The body of a GET straight to MLflow, as the proxy and the auth app's admin."""
    get = program("get")
    return aio.check_output(f"{AS_PROXY} python3 -c {q(get)} {q(DIRECT + path)} {q(AUTHORIZATION)}")


def test_with_job_execution_off_no_job_runner_starts(aio):
    """mlflow_server_job_execution: false (the stack's servers keep MLflow's
    default and run it: tests/test_stack.py)."""
    assert "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false" in aio.file("/etc/mlflow/mlflow.env").content_string
    processes = aio.check_output("ps -eww -o args")
    assert "mlflow server" in processes or "mlflow-entrypoint" in processes, processes
    assert "mlflow.server.jobs" not in processes, "a job runner or consumer runs"


def test_prometheus_metrics(aio):
    body = ask(aio, "/metrics")
    assert "mlflow_http_request" in body or "flask_http_request" in body


def test_mlflow_keeps_its_stored_secrets_under_the_stacks_own_passphrase(lab, aio):
    """MLflow encrypts the secrets it stores (AI gateway keys, webhook
    secrets) under a key from MLFLOW_CRYPTO_KEK_PASSPHRASE; unset, it uses a
    passphrase printed in its source, and says so to its UI."""
    config = json.loads(ask(aio, "/ajax-api/3.0/mlflow/gateway/secrets/config"))
    assert config["using_default_passphrase"] is False, config
    env = aio.file("/etc/mlflow/mlflow.env").content_string.splitlines()
    assert f"MLFLOW_CRYPTO_KEK_PASSPHRASE={lab.secret('crypto_passphrase')}" in env


def test_a_version_that_does_not_know_the_schema_is_refused_before_anything_changes(lab, aio):
    """The database as a newer MLflow would leave it (a revision this version
    does not know): playbooks/mlflow_server.yml refuses it, changes nothing
    before (its install and configuration tasks find the host as converge
    left it) and restarts no server."""
    head = psql(aio, "SELECT version_num FROM alembic_version")
    psql(aio, "UPDATE alembic_version SET version_num = 'ffffffffffff'")
    before = inspect(aio)["State"]["StartedAt"]
    try:
        run = lab.playbook("playbooks/mlflow_server.yml")
    finally:
        psql(aio, f"UPDATE alembic_version SET version_num = '{head}'")
    assert run.returncode != 0
    refusal = "does not know the schema revision of the store database (ffffffffffff)"
    assert refusal in run.stdout, run.stdout[-3000:]
    assert set(changed(run, must_pass=False)) == {0}
    assert inspect(aio)["State"]["StartedAt"] == before


def test_killed_container_restarts_without_data_loss(aio, door, systemd_run):
    before = inspect(aio)["State"]["Pid"]
    aio.check_output(f"kill -KILL {before}")
    deadline = time.time() + 90
    while time.time() < deadline:
        state = inspect(aio)["State"]
        if state["Running"] and state["Pid"] not in (0, before):
            break
        time.sleep(1)
    assert inspect(aio)["RestartCount"] >= 1, "the engine did not restart the crashed container"
    wait_container_healthy(aio)
    wait_healthy(aio, DIRECT, env=AS_PROXY)
    run_id = systemd_run["run_id"]
    assert run_id in door.get(f"/api/2.0/mlflow/runs/get?run_id={run_id}", **ADMIN)


def test_engine_restart_brings_mlflow_back(aio, door, systemd_run):
    """live-restore is off here: the engine's restart stops the container,
    and the restart policy starts it again (a new start, a new process)."""
    before = inspect(aio)["State"]
    aio.check_output("systemctl restart docker")
    wait_container_healthy(aio)
    after = inspect(aio)["State"]
    assert after["StartedAt"] != before["StartedAt"], "the container did not go down with the engine"
    assert after["Pid"] != before["Pid"]
    wait_healthy(aio, DIRECT, env=AS_PROXY)
    run_id = systemd_run["run_id"]
    assert run_id in door.get(f"/api/2.0/mlflow/runs/get?run_id={run_id}", **ADMIN)
