"""MLflow's auth app switched on and off on the all-in-one host (scenario
default): site.yml with mlflow_stack_auth_mode=mlflow over the parts that
read it, checked from aio-outsider through the front door, then back to the
inventory's htpasswd mode. One host: the switch costs a third of what it
cost on the five-host stack, where the same roles run as they do here."""

from __future__ import annotations

import json
import secrets

import pytest
from conftest import FrontDoor, changed, see_run_in_the_ui

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"
# The parts that read mlflow_stack_auth_mode: the auth database, the servers,
# the proxy (the firewall and the artifact store do not).
AUTH_MODE_TAGS = "postgresql,mlflow_server,nginx_proxy"


@pytest.fixture(scope="module")
def door(lab):
    return FrontDoor(lab, client="aio-outsider", proxy="aio")


@pytest.fixture(scope="module")
def ci(lab):
    """The inventory's htpasswd user and password."""
    return "ci", lab.secret("ci_password")


@pytest.fixture(scope="module")
def auth_app(lab, door):
    """The host switched to mlflow_stack_auth_mode=mlflow by site.yml (verified at its end)."""
    passwords = {name: f"Pw-{secrets.token_hex(8)}" for name in ("admin", "carol", "dave")}
    settings = {
        "mlflow_stack_auth_mode": "mlflow",
        "mlflow_stack_auth_admin_password": passwords["admin"],
        "mlflow_server_flask_secret_key": secrets.token_hex(32),
        "mlflow_server_auth_users": [
            {"name": "carol", "password": passwords["carol"]},
            {"name": "dave", "password": passwords["dave"]},
        ],
        # The verification at the end of site.yml logs in as MLflow's admin.
        "mlflow_verify_report_dir": str(lab.ephemeral / "verify-auth-app"),
    }
    with door.anonymous_requests(SEARCH) as codes:
        first = lab.playbook("site.yml", "--tags", AUTH_MODE_TAGS + ",mlflow_verify", **settings)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert "all checks passed" in first.stdout
    report = json.loads((lab.ephemeral / "verify-auth-app" / "report.json").read_text())
    return {"settings": settings, "passwords": passwords, "report": report, "codes": codes}


def test_switching_the_auth_app_on_never_answers_without_credentials(auth_app):
    codes = auth_app["codes"]
    assert len(codes) > 20, codes
    assert "200" not in codes, codes


def test_mlflow_auth_app_mode(lab, door, ci, auth_app):
    """mlflow_stack_auth_mode=mlflow: MLflow's basic-auth app checks credentials and permissions."""
    admin, carol, dave = (auth_app["passwords"][n] for n in ("admin", "carol", "dave"))
    request = door.request
    assert request("GET", SEARCH)[0] == "401"
    assert request("GET", SEARCH, user=ci[0], password=ci[1])[0] == "401", "htpasswd users are gone"
    assert request("GET", SEARCH, user="admin", password=admin)[0] == "200"
    assert request("GET", "/metrics")[0] == "401"
    assert request("GET", "/health")[0] == "200"

    name = f"carols-{secrets.token_hex(4)}"
    create = ("POST", "/api/2.0/mlflow/experiments/create")
    assert request(*create, body=json.dumps({"name": name}), user="carol", password=carol)[0] == "200"
    get = f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}"
    assert request("GET", get, user="carol", password=carol)[0] == "200"
    assert request("GET", get, user="dave", password=dave)[0] == "403", (
        "dave has no permission on carol's experiment (the role's default keeps users apart)"
    )

    key = lab.host("aio").check_output("grep ^MLFLOW_FLASK_SERVER_SECRET_KEY= /etc/mlflow/mlflow.env")
    assert key == "MLFLOW_FLASK_SERVER_SECRET_KEY=" + auth_app["settings"]["mlflow_server_flask_secret_key"]
    # Successful checks are cached (scrypt costs ~250 ms a request otherwise).
    ini = lab.host("aio").check_output("cat /etc/mlflow/basic_auth.ini")
    assert "auth_cache_ttl_seconds = 60" in ini.splitlines()


def test_the_ui_shows_the_verification_run_in_auth_app_mode(door, auth_app):
    report = auth_app["report"]
    see_run_in_the_ui(
        door.proxy_ip,
        door.name,
        "admin",
        auth_app["passwords"]["admin"],
        report["experiment_id"],
        report["run_id"],
        "ui-auth-app-admin",
    )


def test_auth_app_mode_rerun_changes_nothing(lab, auth_app):
    assert set(changed(lab.playbook("site.yml", "--tags", AUTH_MODE_TAGS, **auth_app["settings"]))) == {0}


def test_switching_back_to_htpasswd_never_answers_without_credentials_and_leaves_nothing(
    lab, door, ci, auth_app
):
    """The same parts switch back (the database's rules for the auth app's
    database go too): playbooks/mlflow_server.yml's first play makes the
    proxies check credentials before MLflow's auth app goes off; before that
    order, the server answered anyone until the proxy play ran. A second run
    in htpasswd mode changes nothing: nothing of the auth app was left."""
    with door.anonymous_requests(SEARCH) as codes:
        back = lab.playbook("site.yml", "--tags", AUTH_MODE_TAGS)
    assert set(changed(back)) != {0}
    assert len(codes) > 20, codes
    assert "200" not in codes, codes
    assert door.request("GET", SEARCH)[0] == "401"
    assert door.request("GET", SEARCH, user=ci[0], password=ci[1])[0] == "200"
    assert not lab.host("aio").file("/etc/mlflow/basic_auth.ini").exists
    assert set(changed(lab.playbook("site.yml", "--tags", AUTH_MODE_TAGS))) == {0}
