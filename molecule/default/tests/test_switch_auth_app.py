"""MLflow's auth app on the all-in-one host (scenario default), which
converge switched on (prepare.yml's first install had nginx check
credentials): checked from aio-outsider through the front door, then
switched back to htpasswd, and check mode tried on the host so converged,
last. One host: a switch costs a third of what it cost on the five-host
stack, where the same roles run as they do here."""

from __future__ import annotations

import json
import secrets

import pytest
from labtest.browser import see_run_in_the_ui
from labtest.front_door import FrontDoor
from labtest.lab import changed, changed_tasks

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"
# The parts that read mlflow_stack_auth_mode: the auth database, the servers,
# the proxy (the firewall and the artifact store do not).
AUTH_MODE_TAGS = "postgresql,mlflow_server,nginx_proxy"


@pytest.fixture(scope="module")
def door(lab):
    return FrontDoor(lab, client="aio-outsider", proxy="aio")


@pytest.fixture(scope="module")
def passwords(lab):
    """The auth app's admin and users, as the inventory gives them."""
    return {name: lab.secret(f"{name}_password") for name in ("admin", "carol", "dave", "ci")}


def test_mlflow_auth_app_mode(lab, door, passwords):
    """mlflow_stack_auth_mode=mlflow: MLflow's basic-auth app checks credentials and permissions."""
    admin, carol, dave, ci = (passwords[n] for n in ("admin", "carol", "dave", "ci"))
    request = door.request
    assert request("GET", SEARCH)[0] == "401"
    assert request("GET", SEARCH, user="ci", password=ci)[0] == "401", "htpasswd users are gone"
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
    assert key == "MLFLOW_FLASK_SERVER_SECRET_KEY=" + lab.secret("flask_secret_key")
    # Successful checks are cached (scrypt costs ~250 ms a request otherwise).
    ini = lab.host("aio").check_output("cat /etc/mlflow/basic_auth.ini")
    assert "auth_cache_ttl_seconds = 60" in ini.splitlines()


def test_the_ui_shows_the_verification_run_in_auth_app_mode(lab, door, passwords):
    """converge's verification logged in as the auth app's admin."""
    report = json.loads((lab.ephemeral / "verify" / "report.json").read_text())
    see_run_in_the_ui(
        door.proxy_ip,
        door.name,
        "admin",
        passwords["admin"],
        report["experiment_id"],
        report["run_id"],
        "ui-auth-app-admin",
        proxy=lab.host("aio"),
    )


def test_switching_back_to_htpasswd_never_answers_without_credentials_and_leaves_nothing(
    lab, door, passwords
):
    """The same parts switch back (the database's rules for the auth app's
    database go too): playbooks/mlflow_server.yml's first play makes the
    proxies check credentials before MLflow's auth app goes off; before that
    order, the server answered anyone until the proxy play ran. That nothing
    of the auth app was left: the check-mode run below, in htpasswd mode,
    sees no other change than the one it asks for."""
    with door.anonymous_requests(SEARCH) as codes:
        back = lab.playbook("site.yml", "--tags", AUTH_MODE_TAGS, mlflow_stack_auth_mode="htpasswd")
    assert set(changed(back)) != {0}
    assert len(codes) > 20, codes
    assert "200" not in codes, codes
    assert door.request("GET", SEARCH)[0] == "401"
    assert door.request("GET", SEARCH, user="ci", password=passwords["ci"])[0] == "200"
    assert not lab.host("aio").file("/etc/mlflow/basic_auth.ini").exists


def started(aio) -> str:
    return aio.check_output("docker inspect -f '{{.State.StartedAt}}' mlflow-server")


def test_check_mode_on_the_converged_host_shows_the_change_asked_for_and_makes_none(lab):
    """After the switch back: site.yml --check --diff in htpasswd mode with
    one setting changed (the workers): only the tasks that setting reaches
    report a change (the server's environment, its drain, new container and
    undrain), every other task of the host none (so the switch back left
    nothing of the auth app to remove); and nothing changes: no file
    written, no server restarted, none left drained."""
    aio = lab.host("aio")
    workers = lab.var("aio", "mlflow_server_workers")
    assert workers != 3, workers
    env_file = "sha256sum /etc/mlflow/mlflow.env"
    before_file, before = aio.check_output(env_file), started(aio)
    run = lab.playbook(
        "site.yml", "--check", "--diff", mlflow_server_workers=3, mlflow_stack_auth_mode="htpasswd"
    )
    assert sum(changed(run)) > 0, "check mode did not see the change"
    expected = {
        ("mlflow_server : Write the server environment (secrets; shared by every install mode)", "aio"),
        ("mlflow_server : Run the MLflow container", "aio"),
        # Delegated to the host itself: no " -> " in the label.
        ("nginx_proxy : Mark the server down in the upstream, or up again", "aio"),
        ("nginx_proxy : Reload nginx", "aio"),
    }
    seen = changed_tasks(run)
    assert seen == expected, seen ^ expected
    assert aio.check_output(env_file) == before_file, "check mode wrote a file"
    assert started(aio) == before, "check mode restarted the server"
    upstream = aio.check_output("grep -c ' down;' /etc/nginx/sites-available/mlflow.conf || true")
    assert upstream == "0", "check mode left the server drained"
