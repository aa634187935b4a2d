"""Behaviour of the nginx_proxy role in front of two MLflow servers (scenario molecule/nginx_proxy)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from contextlib import contextmanager

import pytest
from conftest import q, scenario, see_run_in_the_ui

LAB = scenario()
NAME = LAB.var("ngx-proxy", "mlflow_stack_public_name")
(ALIAS,) = LAB.var("ngx-proxy", "mlflow_stack_public_aliases")
CA = "/usr/local/share/mlflow-lab-ca.crt"

# (method, path, body, status with the right credentials), as MLflow answers them.
ROUTES = [
    ("GET", "/", None, "200"),
    ("GET", "/static-files/favicon.ico", None, "200"),
    ("GET", "/health", None, "200"),
    ("GET", "/version", None, "200"),
    ("GET", "/metrics", None, "200"),
    ("GET", "/api/2.0/mlflow/experiments/search?max_results=1", None, "200"),
    ("POST", "/ajax-api/2.0/mlflow/experiments/search", '{"max_results": 1}', "200"),
    ("GET", "/api/2.0/mlflow/registered-models/search", None, "200"),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/routes/probe.txt", "probe", "200"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts/routes/probe.txt", None, "200"),
    ("GET", "/ajax-api/2.0/mlflow-artifacts/artifacts?path=routes", None, "200"),
    ("GET", "/get-artifact?path=x&run_uuid=00000000000000000000000000000000", None, "404"),
    ("POST", "/graphql", '{"query": "{ __typename }"}', "200"),
]


@pytest.fixture(scope="module")
def proxy(lab):
    return lab.host("ngx-proxy")


@pytest.fixture(scope="module")
def client(lab):
    host = lab.host("ngx-client")
    ca = lab.ephemeral / "tls" / f"{NAME}-ca.crt"
    subprocess.run(["docker", "cp", str(ca), f"ngx-client:{CA}"], check=True)
    return host


@pytest.fixture(scope="module")
def proxy_ip(lab):
    return lab.ip("ngx-proxy")


@pytest.fixture(scope="module")
def users(lab):
    return {name: lab.secret(f"{name}_password") for name in ("alice", "bob")}


@pytest.fixture(scope="module")
def request_(client, proxy_ip):
    """HTTP status (and headers) of a request through the proxy, from the client."""

    def call(method, path, *, user=None, password=None, body=None, scheme="https", name=NAME, extra=()):
        port = 443 if scheme == "https" else 80
        options = [
            "-s",
            "-o /dev/null",
            "-D /tmp/headers",
            "-w '%{http_code}'",
            f"--cacert {CA}",
            f"--resolve {name}:{port}:{proxy_ip}",
            f"-X {method}",
            *extra,
        ]
        if user:
            options.append(f"-u {q(user + ':' + password)}")
        if body is not None:
            options += ["-H 'Content-Type: application/json'", f"--data-binary {q(body)}"]
        result = client.run(f"curl {' '.join(options)} {q(f'{scheme}://{name}{path}')}")
        return result.stdout, client.file("/tmp/headers").content_string if result.rc == 0 else ""

    return call


@pytest.mark.parametrize(
    ("method", "path", "body", "status"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
def test_every_route_needs_credentials(request_, users, method, path, body, status):
    assert request_(method, path, body=body)[0] == "401"
    assert request_(method, path, body=body, user="alice", password="wrong-password-123")[0] == "401"
    assert request_(method, path, body=body, user="alice", password=users["alice"])[0] == status


def test_http_redirects_to_https(request_):
    status, headers = request_("GET", "/api/2.0/mlflow/experiments/search", scheme="http")
    assert status == "301"
    assert f"location: https://{NAME}/api/2.0/mlflow/experiments/search" in headers.lower()


def test_tls_verified_for_every_name_modern_protocols_only(proxy, request_, users):
    for name in (NAME, ALIAS):
        assert request_("GET", "/version", user="alice", password=users["alice"], name=name)[0] == "200"
    # TLS 1.2 and 1.3 are each accepted ...
    for version in ("1.2", "1.3"):
        pinned = [f"--tlsv{version}", f"--tls-max {version}"]
        assert request_("GET", "/version", user="alice", password=users["alice"], extra=pinned)[0] == "200"
    # ... older ones are refused, to a client that speaks them: OpenSSL's
    # security level 0 lets curl offer TLS 1.0/1.1 and their CBC ciphers,
    # which it does by default refuse itself (the positive control below shows
    # it). The AEAD-only cipher list would refuse them too, so the protocol
    # setting itself is also read from nginx's effective config.
    old_tls = ["--tls-max 1.1", "--ciphers DEFAULT:@SECLEVEL=0"]
    assert request_("GET", "/version", extra=old_tls)[0] == "000"
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in proxy.check_output("nginx -T 2>/dev/null")


def test_the_client_of_the_tls_test_does_speak_tls_1_1(client):
    """Positive control: the same curl options against a server that allows
    TLS 1.1 (openssl s_server on the client itself) do connect."""
    client.check_output(
        "cd /tmp && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=old -days 1"
        " -keyout old.key -out old.crt 2>/dev/null"
        " && (timeout 20 openssl s_server -accept 4433 -tls1_1 -cipher DEFAULT:@SECLEVEL=0"
        " -key old.key -cert old.crt -www > /dev/null 2>&1 &)"
    )
    answer = client.run(
        "curl -sk -o /dev/null -w '%{http_code}' --retry 15 --retry-delay 1 --retry-connrefused"
        " --tls-max 1.1 --ciphers DEFAULT:@SECLEVEL=0 https://127.0.0.1:4433/"
    )
    assert answer.stdout.startswith("200"), answer.stdout + answer.stderr


def test_security_headers_and_no_version(request_, users):
    _, headers = request_("GET", "/version", user="alice", password=users["alice"])
    headers = headers.lower()
    assert "x-content-type-options: nosniff" in headers
    assert "x-frame-options: sameorigin" in headers
    assert re.search(r"^server: nginx\s*$", headers, re.M), headers


def test_body_limit_is_the_configured_one(request_, users):
    # 3 GB announced, 2g allowed: nginx refuses before reading the body.
    status, _ = request_(
        "PUT",
        "/api/2.0/mlflow-artifacts/artifacts/limit/too-big.bin",
        user="alice",
        password=users["alice"],
        extra=["-H 'Content-Length: 3000000000'", "--data-binary x", "--max-time 10"],
    )
    assert status == "413"


def test_one_gib_upload_passes_through(client, request_, users):
    client.check_output("head -c 1G /dev/urandom > /var/tmp/1g.bin")
    # Idle longer than uvicorn's default keep-alive (5 s): with it, nginx would
    # reuse a pooled connection MLflow is closing and answer 502.
    time.sleep(6)
    try:
        start = time.time()
        status, _ = request_(
            "PUT",
            "/api/2.0/mlflow-artifacts/artifacts/big/1g.bin",
            user="alice",
            password=users["alice"],
            extra=["-T /var/tmp/1g.bin"],
        )
        seconds = time.time() - start
        assert status == "200"
        print(f"1 GiB upload through the proxy: {seconds:.1f} s, {1024 / seconds:.1f} MiB/s")
    finally:
        client.run("rm -f /var/tmp/1g.bin")
    listing = client.check_output(
        f"curl -sf --cacert {CA} --resolve {NAME}:443:$(getent hosts ngx-proxy | cut -d' ' -f1) "
        f"-u {q('alice:' + users['alice'])} 'https://{NAME}/api/2.0/mlflow-artifacts/artifacts?path=big'"
    )
    sizes = {f["path"]: int(f.get("file_size", 0)) for f in json.loads(listing)["files"]}
    assert sizes["1g.bin"] == 1 << 30


def upstreams_used(proxy, since_lines):
    lines = proxy.check_output("cat /var/log/nginx/mlflow.access.log").splitlines()[since_lines:]
    return [m.group(1) for line in lines if (m := re.search(r"upstream=(\S+)", line))]


def test_requests_spread_over_both_servers_and_survive_one_stopping(lab, proxy, request_, users):
    servers = {lab.ip(n) for n in ("ngx-ml1", "ngx-ml2")}
    start = int(proxy.check_output("wc -l < /var/log/nginx/mlflow.access.log"))
    for _ in range(20):
        assert request_("GET", "/version", user="alice", password=users["alice"])[0] == "200"
    used = {u.rsplit(":", 1)[0] for u in upstreams_used(proxy, start)}
    assert used == servers, used

    stopped = lab.host("ngx-ml1")
    stopped.check_output("systemctl stop mlflow-server")
    try:
        search = "/api/2.0/mlflow/experiments/search?max_results=1"
        for _ in range(20):
            assert request_("GET", search, user="alice", password=users["alice"])[0] == "200"
    finally:
        stopped.check_output("systemctl start mlflow-server")


def test_upstream_servers_use_the_configured_fail_timeout(lab, proxy):
    fail_timeout = lab.var("ngx-proxy", "nginx_proxy_upstream_fail_timeout")
    servers = re.findall(r"^\s*server (\S+:\d+) (.*);$", proxy.check_output("nginx -T 2>/dev/null"), re.M)
    assert {lab.ip(n) + ":5000" for n in ("ngx-ml1", "ngx-ml2")} == {address for address, _ in servers}
    assert all(f"fail_timeout={fail_timeout}" in options.split() for _, options in servers), servers


def test_the_ban_counts_the_access_log_with_the_configured_threshold(lab, proxy):
    maxretry = lab.var("ngx-proxy", "nginx_proxy_ban_max_failures")
    assert proxy.check_output("fail2ban-client get mlflow-proxy maxretry") == str(maxretry)
    logpath = proxy.check_output("fail2ban-client get mlflow-proxy logpath")
    assert "/var/log/nginx/mlflow.access.log" in logpath


def test_removed_user_is_locked_out(lab, request_, users):
    assert request_("GET", "/version", user="bob", password=users["bob"])[0] == "200"
    result = lab.playbook(
        "playbooks/nginx_proxy.yml",
        nginx_proxy_users=[{"name": "alice", "password": users["alice"]}],
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert request_("GET", "/version", user="bob", password=users["bob"])[0] == "401"
    assert request_("GET", "/version", user="alice", password=users["alice"])[0] == "200"


SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


@contextmanager
def anonymous_requests(client, proxy_ip):
    """Status codes of requests without credentials sent twice a second while
    the block runs (slow enough to stay under the ban's threshold)."""
    loop = (
        "while [ ! -e /tmp/probe-stop ]; do "
        f"curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 5 --cacert {CA} "
        f"--resolve {NAME}:443:{proxy_ip} 'https://{NAME}{SEARCH}' >> /tmp/probe-codes; sleep 0.5; done"
    )
    client.check_output(f"rm -f /tmp/probe-codes /tmp/probe-stop; setsid sh -c {q(loop)} > /dev/null 2>&1 &")
    codes: list[str] = []
    try:
        yield codes
    finally:
        client.check_output("touch /tmp/probe-stop; sleep 1")
        codes.extend(client.check_output("cat /tmp/probe-codes").split())


@pytest.fixture(scope="module")
def auth_app(lab, client, proxy_ip):
    """The stack switched to mlflow_stack_auth_mode=mlflow by site.yml (verified at its end)."""
    passwords = {name: f"Pw-{secrets.token_hex(8)}" for name in ("admin", "carol", "dave")}
    settings = {
        "mlflow_stack_auth_mode": "mlflow",
        "mlflow_stack_auth_admin_password": passwords["admin"],
        "mlflow_server_flask_secret_key": secrets.token_hex(32),
        "mlflow_server_auth_default_permission": "NO_PERMISSIONS",
        "mlflow_server_auth_users": [
            {"name": "carol", "password": passwords["carol"]},
            {"name": "dave", "password": passwords["dave"]},
        ],
        # The verification at the end of site.yml logs in as MLflow's admin.
        "mlflow_verify_resolve": [f"{NAME}:{proxy_ip}"],
        "mlflow_verify_report_dir": str(lab.ephemeral / "verify-auth-app"),
    }
    with anonymous_requests(client, proxy_ip) as codes:
        first = lab.playbook("site.yml", **settings)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert "all checks passed" in first.stdout
    report = json.loads((lab.ephemeral / "verify-auth-app" / "report.json").read_text())
    return {"settings": settings, "passwords": passwords, "report": report, "codes": codes}


def test_switching_the_auth_app_on_never_answers_without_credentials(auth_app):
    codes = auth_app["codes"]
    assert len(codes) > 20, codes
    assert "200" not in codes, codes


def test_mlflow_auth_app_mode(lab, request_, users, auth_app):
    """mlflow_stack_auth_mode=mlflow: MLflow's basic-auth app checks credentials and permissions."""
    admin, carol, dave = (auth_app["passwords"][n] for n in ("admin", "carol", "dave"))
    search = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert request_("GET", search)[0] == "401"
    assert request_("GET", search, user="alice", password=users["alice"])[0] == "401", (
        "htpasswd users are gone"
    )
    assert request_("GET", search, user="admin", password=admin)[0] == "200"
    assert request_("GET", "/metrics")[0] == "401"
    assert request_("GET", "/health")[0] == "200"

    name = f"carols-{secrets.token_hex(4)}"
    create = ("POST", "/api/2.0/mlflow/experiments/create")
    assert request_(*create, body=json.dumps({"name": name}), user="carol", password=carol)[0] == "200"
    get = f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}"
    assert request_("GET", get, user="carol", password=carol)[0] == "200"
    assert request_("GET", get, user="dave", password=dave)[0] == "403", (
        "dave has no permission on carol's experiment"
    )

    keys = {
        lab.host(n).check_output("grep ^MLFLOW_FLASK_SERVER_SECRET_KEY= /etc/mlflow/mlflow.env")
        for n in ("ngx-ml1", "ngx-ml2")
    }
    assert len(keys) == 1, "every server needs the same Flask secret key"
    # Successful checks are cached (scrypt costs ~250 ms a request otherwise).
    ini = lab.host("ngx-ml1").check_output("cat /etc/mlflow/basic_auth.ini")
    assert "auth_cache_ttl_seconds = 60" in ini.splitlines()


def test_the_ui_shows_the_verification_run_in_auth_app_mode(auth_app, proxy_ip):
    report = auth_app["report"]
    see_run_in_the_ui(
        proxy_ip,
        NAME,
        "admin",
        auth_app["passwords"]["admin"],
        report["experiment_id"],
        report["run_id"],
        "ui-auth-app-admin",
    )


def test_auth_app_mode_rerun_changes_nothing(lab, auth_app):
    again = lab.playbook("site.yml", **auth_app["settings"])
    assert again.returncode == 0, again.stdout[-4000:]
    recap = again.stdout[again.stdout.rindex("PLAY RECAP") :]
    changed = re.findall(r"changed=(\d+)", recap)
    assert changed, recap
    assert set(changed) == {"0"}, recap


def test_switching_back_to_htpasswd_never_answers_without_credentials(lab, client, proxy_ip, request_, users):
    """The proxies check credentials before MLflow's auth app goes off
    (playbooks/mlflow_server.yml's first play); before that order, the
    servers answered anyone until the proxy play ran."""
    with anonymous_requests(client, proxy_ip) as codes:
        back = lab.playbook("site.yml", "--skip-tags", "mlflow_verify")
    assert back.returncode == 0, back.stdout[-4000:] + back.stderr[-2000:]
    assert len(codes) > 20, codes
    assert "200" not in codes, codes
    assert request_("GET", SEARCH)[0] == "401"
    assert request_("GET", SEARCH, user="alice", password=users["alice"])[0] == "200"
    assert not lab.host("ngx-ml1").file("/etc/mlflow/basic_auth.ini").exists
