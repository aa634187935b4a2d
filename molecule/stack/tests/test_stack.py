"""The whole stack (scenario molecule/stack, also the lab): site.yml ends with the verification."""

from __future__ import annotations

import base64
import collections
import json
import re
import time

import pytest
from labtest.browser import see_run_in_the_ui
from labtest.hosts import (
    AS_PROXY,
    kept_alive_stall_ms,
    program,
    upstream,
    uvicorn_workers,
    wait_healthy,
)
from labtest.lab import PROJECT, q, scenario
from labtest.stack import bucket_keys, psql

NAME = scenario().var("stk-proxy", "mlflow_stack_public_name")


@pytest.fixture(scope="module")
def report(lab):
    return json.loads((lab.ephemeral / "verify" / "report.json").read_text())


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
    run_prefix = f"artifacts/{report['experiment_id']}/{report['run_id']}/artifacts/evaluation/"
    assert bucket_keys(lab, run_prefix) == {
        run_prefix + n for n in ("confusion_matrix.png", "feature_importance.csv", "roc_curve.png")
    }
    experiment = bucket_keys(lab, f"artifacts/{report['experiment_id']}/")
    assert any(k.endswith("/MLmodel") for k in experiment), "no logged model in S3"


def test_one_server_per_install_mode(lab):
    assert lab.host("stk-ml1").service("mlflow-server").is_running
    ml2 = lab.host("stk-ml2")
    assert not ml2.file("/etc/systemd/system/mlflow-server.service").exists
    assert ml2.check_output("docker inspect -f '{{.State.Health.Status}}' mlflow-server") == "healthy"


def main_pid(host) -> str:
    return host.check_output("systemctl show -p MainPID --value mlflow-server")


def test_the_systemd_service_runs_as_its_user_and_keeps_secrets_out_of_systemd(lab):
    ml1 = lab.host("stk-ml1")
    assert ml1.service("mlflow-server").is_enabled
    assert ml1.check_output(f"ps -o user= -p {main_pid(ml1)}") == "mlflow"
    assert lab.secret("pg_password") not in ml1.check_output("systemctl show mlflow-server")


def test_the_systemd_unit_is_as_hardened_as_the_readme_says(lab):
    readme = (PROJECT / "roles/mlflow_server/README.md").read_text()
    claimed = float(re.search(r"`systemd-analyze security`: ([0-9.]+)", readme).group(1))
    out = lab.host("stk-ml1").check_output("systemd-analyze security mlflow-server")
    score = float(re.search(r"Overall exposure level for mlflow-server.service: ([0-9.]+)", out).group(1))
    assert score <= claimed, out.splitlines()[-1]


RUN_STATUS = program("run_status")


UI_TELEMETRY = program("ui_telemetry")


def test_no_server_reports_usage_to_mlflows_maintainers(lab):
    """MLflow's usage telemetry is off on each server, in both modes: its UI
    is told so (a server with telemetry on answers "success" and reports)."""
    proxy = lab.host("stk-proxy")
    for server in lab.group("mlflow_server"):
        url = upstream(lab, server)
        answer = proxy.check_output(f"{AS_PROXY} python3 -c {q(UI_TELEMETRY)} {url} {NAME}")
        assert answer == "disabled", server


def test_a_killed_systemd_server_is_restarted_and_serves_the_runs(lab, report):
    ml1, proxy = lab.host("stk-ml1"), lab.host("stk-proxy")
    url = upstream(lab, "stk-ml1")
    before = main_pid(ml1)
    ml1.check_output("systemctl kill -s KILL mlflow-server")
    deadline = time.time() + 60
    while main_pid(ml1) in ("0", before) and time.time() < deadline:
        time.sleep(1)
    assert main_pid(ml1) not in ("0", before), "systemd did not restart MLflow"
    wait_healthy(proxy, url, env=AS_PROXY)
    status = proxy.check_output(f"{AS_PROXY} python3 -c {q(RUN_STATUS)} {url} {report['run_id']} {NAME}")
    assert status == "FINISHED"


def test_the_proxy_spread_the_verification_over_both_servers(lab):
    """The verification's own requests (MLflow's client sends its name as
    User-Agent; the tests' clients do not), answered 200 by each server."""
    log = lab.host("stk-proxy").check_output("cat /var/log/nginx/mlflow.access.log")
    answered = collections.Counter(
        upstream.split(":")[0]
        for status, agent, upstream in re.findall(r'" (\d{3}) \d+ "([^"]*)" upstream=(\S+)', log)
        if status == "200" and agent.startswith("mlflow-python-client/")
    )
    for server in ("stk-ml1", "stk-ml2"):
        assert answered[lab.ip(server)] > 0, f"no verification request answered by {server}: {answered}"


def test_a_person_sees_the_verification_run_in_the_ui(lab, report):
    """alice: a person's password (bcrypt). The admin (a generated secret, a
    fast hash) reloads the page 30 times in tests/test_front_door.py."""
    see_run_in_the_ui(
        lab.ip("stk-proxy"),
        NAME,
        "alice",
        lab.secret("alice_password"),
        report["experiment_id"],
        report["run_id"],
        "ui-htpasswd-alice",
        proxy=lab.host("stk-proxy"),
    )


@pytest.mark.parametrize("server", ["stk-ml1", "stk-ml2"])
def test_each_server_runs_its_configured_workers(lab, server):
    assert uvicorn_workers(lab.host(server)) == lab.var(server, "mlflow_server_workers") > 1


def test_one_server_of_the_fleet_enqueues_mlflows_periodic_tasks(lab):
    """MLflow's periodic tasks (online scoring scheduler, trace archival) run
    in a consumer process that one server of the fleet starts (the first by
    default); both still run job consumers."""
    periodic = "mlflow.server.jobs._periodic_tasks_consumer"
    jobs = "mlflow.server.jobs._huey_consumer"
    servers = lab.group("mlflow_server")  # site.yml's fleet
    consumers = {server: lab.host(server).check_output("ps -eww -o args") for server in servers}
    assert [server for server, processes in consumers.items() if periodic in processes] == servers[:1]
    assert all(jobs in processes for processes in consumers.values()), consumers


@pytest.mark.parametrize("server", ["stk-ml1", "stk-ml2"])
def test_connections_the_proxy_keeps_alive_do_not_wait_for_delayed_acks(lab, server):
    """nginx reuses its connections to MLflow; each mode's server must answer a
    reused connection without Nagle's stall (>= 40 ms per request)."""
    # The stack's default port (mlflow_stack_mlflow_port), as test_front_door's.
    assert kept_alive_stall_ms(lab.host("stk-proxy"), lab.ip(server), 5000, NAME, env=AS_PROXY) < 20


def db_password(lab) -> str:
    """The scenario's database password, as molecule.yml writes it."""
    return " p@ss:w/rd%25#q\"x\\y'z$HOME!" + lab.secret("pg_password") + " "


LOGIN = program("login")


def login(lab, password: str, sslmode: str = "verify-full", host: str = ""):
    """A login to the stack's database from stk-ml1 (testinfra's result)."""
    # The venv of the version stk-ml1 runs (recorded as VERSION+schema).
    version = lab.host("stk-ml1").check_output("cat /var/lib/mlflow/schema-version").split("+")[0]
    python = f"/opt/mlflow/venvs/{version}/bin/python"
    encoded = base64.b64encode(password.encode()).decode()
    return lab.host("stk-ml1").run(
        f"echo {encoded} | {python} -c {q(LOGIN)} {host or lab.ip('stk-db')} {sslmode}"
    )


def test_postgresql_takes_the_password_exactly_as_given(lab):
    """Not trimmed nor unescaped on the way (a change made the same way on
    the server's and the database's side would pass every other test): the
    password as written in the inventory logs in, the same without its outer
    spaces does not."""
    password = db_password(lab)
    exact = login(lab, password)
    assert exact.rc == 0, exact.stderr
    trimmed = login(lab, password.strip())
    assert trimmed.rc != 0
    assert "password authentication failed" in trimmed.stderr, trimmed.stderr


def test_postgresql_takes_only_tls_logins_and_mlflow_checks_its_certificate(lab):
    """The right password over a plain connection is refused (hostssl rules
    only); over TLS with the certificate and name checked (verify-full, what
    the servers' environment sets) it logs in; verify-full refuses a name the
    certificate does not carry (stk-db resolves to the same server)."""
    password = db_password(lab)
    plain = login(lab, password, sslmode="disable")
    assert plain.rc != 0
    assert "no encryption" in plain.stderr, plain.stderr
    assert login(lab, password).rc == 0
    other_name = login(lab, password, host="stk-db")
    assert other_name.rc != 0
    assert "does not match host name" in other_name.stderr, other_name.stderr
    for server in lab.group("mlflow_server"):
        environment = lab.host(server).check_output("cat /etc/mlflow/mlflow.env").split("\n")
        expected = {"PGSSLMODE=verify-full", "PGSSLROOTCERT=/etc/mlflow/tls/db-ca.crt"}
        assert expected <= set(environment), server


@pytest.mark.parametrize("server", ["stk-ml1", "stk-ml2"])
def test_a_password_with_any_printable_character_reaches_mlflow_intact(lab, server):
    """The scenario's database password has $, quotes, backslash, #, %, :, / and
    spaces at both ends; both modes read it verbatim (the verification above
    went through both servers, so PostgreSQL accepted it from each)."""
    password = db_password(lab)
    host = lab.host(server)
    lines = host.check_output("cat /etc/mlflow/mlflow.env").split("\n")
    assert f"PGPASSWORD={password}" in [line.rstrip("\r") for line in lines]
    assert lab.secret("pg_password") not in host.check_output("ps -eww -o args")
