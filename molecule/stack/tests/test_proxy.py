"""The front door's own behaviour (role nginx_proxy), tried from stk-outsider,
a client in no group: every route behind credentials, TLS, headers, body
limits, both servers used and one stopping, users removed, and MLflow's auth
app switched on and off (runs after test_front_door.py, whose flood leaves
stk-outsider unbanned)."""

from __future__ import annotations

import json
import re
import secrets
import time
from contextlib import contextmanager

import pytest
from conftest import (
    access_log,
    access_log_length,
    changed_tasks,
    install,
    only_on,
    q,
    scenario,
    see_run_in_the_ui,
    wait_healthy,
)

LAB = scenario()
NAME = LAB.var("stk-proxy", "mlflow_stack_public_name")
(ALIAS,) = LAB.var("stk-proxy", "mlflow_stack_public_aliases")
CA = "/usr/local/share/mlflow-lab-ca.crt"
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"

# (method, path, body, status with the right credentials), as MLflow answers them.
ROUTES = [
    ("GET", "/", None, "200"),
    ("GET", "/static-files/favicon.ico", None, "200"),
    ("GET", "/health", None, "200"),
    ("GET", "/version", None, "200"),
    ("GET", "/metrics", None, "200"),
    ("GET", SEARCH, None, "200"),
    ("POST", "/ajax-api/2.0/mlflow/experiments/search", '{"max_results": 1}', "200"),
    ("GET", "/api/2.0/mlflow/registered-models/search", None, "200"),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/routes/probe.txt", "probe", "200"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts/routes/probe.txt", None, "200"),
    ("GET", "/ajax-api/2.0/mlflow-artifacts/artifacts?path=routes", None, "200"),
    ("GET", "/get-artifact?path=x&run_uuid=00000000000000000000000000000000", None, "404"),
    ("POST", "/graphql", '{"query": "{ __typename }"}', "200"),
]


# Drills that need one distribution only are shared out between the two;
# the auth app is switched on and off on Ubuntu (below).
on_ubuntu = only_on("ubuntu2404")


@pytest.fixture(scope="module")
def proxy(lab):
    return lab.host("stk-proxy")


@pytest.fixture(scope="module")
def client(lab):
    """stk-outsider with curl and openssl, and the lab's CA."""
    host = lab.host("stk-outsider")
    install(host, "curl", "openssl")
    ca = (lab.ephemeral / "tls" / f"{NAME}-ca.crt").read_text()
    host.check_output(f"printf %s {q(ca)} > {CA}")
    return host


@pytest.fixture(scope="module")
def proxy_ip(lab):
    return lab.ip("stk-proxy")


@pytest.fixture(scope="module")
def alice(lab):
    return lab.secret("alice_password")


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
def test_every_route_needs_credentials(request_, alice, method, path, body, status):
    assert request_(method, path, body=body)[0] == "401"
    assert request_(method, path, body=body, user="alice", password="wrong-password-123")[0] == "401"
    assert request_(method, path, body=body, user="alice", password=alice)[0] == status


def test_http_redirects_to_https(request_):
    status, headers = request_("GET", SEARCH, scheme="http")
    assert status == "301"
    assert f"location: https://{NAME}{SEARCH}" in headers.lower()


def test_tls_verified_for_every_name_modern_protocols_only(proxy, request_, alice):
    for name in (NAME, ALIAS):
        assert request_("GET", "/version", user="alice", password=alice, name=name)[0] == "200"
    # TLS 1.2 and 1.3 are each accepted ...
    for version in ("1.2", "1.3"):
        pinned = [f"--tlsv{version}", f"--tls-max {version}"]
        assert request_("GET", "/version", user="alice", password=alice, extra=pinned)[0] == "200"
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


def test_security_headers_and_no_version(request_, alice):
    _, headers = request_("GET", "/version", user="alice", password=alice)
    headers = headers.lower()
    assert "x-content-type-options: nosniff" in headers
    assert "x-frame-options: sameorigin" in headers
    assert re.search(r"^server: nginx\s*$", headers, re.M), headers


def test_body_limit_is_the_configured_one(lab, request_, alice):
    # 3 GB announced, 2g allowed: nginx refuses before reading the body.
    assert lab.var("stk-proxy", "nginx_proxy_client_max_body_size") == "2g"
    status, _ = request_(
        "PUT",
        "/api/2.0/mlflow-artifacts/artifacts/limit/too-big.bin",
        user="alice",
        password=alice,
        extra=["-H 'Content-Length: 3000000000'", "--data-binary x", "--max-time 10"],
    )
    assert status == "413"


def test_one_gib_upload_passes_through(client, proxy_ip, request_, alice):
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
            password=alice,
            extra=["-T /var/tmp/1g.bin"],
        )
        seconds = time.time() - start
        assert status == "200"
        print(f"1 GiB upload through the proxy: {seconds:.1f} s, {1024 / seconds:.1f} MiB/s")
    finally:
        client.run("rm -f /var/tmp/1g.bin")
    listing = client.check_output(
        f"curl -sf --cacert {CA} --resolve {NAME}:443:{proxy_ip} "
        f"-u {q('alice:' + alice)} 'https://{NAME}/api/2.0/mlflow-artifacts/artifacts?path=big'"
    )
    sizes = {f["path"]: int(f.get("file_size", 0)) for f in json.loads(listing)["files"]}
    assert sizes["1g.bin"] == 1 << 30


def test_requests_spread_over_both_servers_and_survive_one_stopping(lab, proxy, request_, alice):
    servers = {lab.ip(n) for n in lab.group("mlflow_server")}
    start = access_log_length(proxy)
    for _ in range(20):
        assert request_("GET", "/version", user="alice", password=alice)[0] == "200"
    # This test's own requests: alice's GETs of /version.
    ours = [
        m
        for line in access_log(proxy, start)
        if (m := re.search(r' - alice \[[^]]*\] "GET /version .* upstream=(\S+)', line))
    ]
    assert len(ours) == 20, ours
    used = {m.group(1).rsplit(":", 1)[0] for m in ours}
    assert used == servers, used

    stopped = lab.host("stk-ml1")
    stopped.check_output("systemctl stop mlflow-server")
    try:
        for _ in range(20):
            assert request_("GET", SEARCH, user="alice", password=alice)[0] == "200"
    finally:
        stopped.check_output("systemctl start mlflow-server")
        wait_healthy(lab.host("stk-proxy"), f"http://{lab.ip('stk-ml1')}:5000")


def test_upstream_servers_use_the_configured_fail_timeout(lab, proxy):
    fail_timeout = lab.var("stk-proxy", "nginx_proxy_upstream_fail_timeout")
    servers = re.findall(r"^\s*server (\S+:\d+) (.*);$", proxy.check_output("nginx -T 2>/dev/null"), re.M)
    assert {lab.ip(n) + ":5000" for n in lab.group("mlflow_server")} == {address for address, _ in servers}
    assert all(f"fail_timeout={fail_timeout}" in options.split() for _, options in servers), servers


def test_the_ban_counts_the_access_log_with_the_configured_threshold(lab, proxy):
    maxretry = lab.var("stk-proxy", "nginx_proxy_ban_max_failures")
    assert proxy.check_output("fail2ban-client get mlflow-proxy maxretry") == str(maxretry)
    logpath = proxy.check_output("fail2ban-client get mlflow-proxy logpath")
    assert "/var/log/nginx/mlflow.access.log" in logpath


@on_ubuntu
def test_removed_user_is_locked_out(lab, request_, alice):
    """bob added, then the inventory's users again: bob is refused, the others
    are not. The second run is playbooks/nginx_proxy.yml alone with the
    inventory: it changes the users file and nothing else (alone, it gets
    what site.yml gives the proxy)."""
    bob = secrets.token_urlsafe(16)
    users = [
        {"name": "admin", "password": lab.secret("admin_password"), "generated": True},
        {"name": "alice", "password": alice},
    ]
    added = lab.playbook(
        "playbooks/nginx_proxy.yml", nginx_proxy_users=[*users, {"name": "bob", "password": bob}]
    )
    assert added.returncode == 0, added.stdout[-3000:]
    assert request_("GET", "/version", user="bob", password=bob)[0] == "200"
    removed = lab.playbook("playbooks/nginx_proxy.yml")
    assert removed.returncode == 0, removed.stdout[-3000:]
    assert changed_tasks(removed) == {("nginx_proxy : Write the users file", "stk-proxy")}
    assert request_("GET", "/version", user="bob", password=bob)[0] == "401"
    assert request_("GET", "/version", user="alice", password=alice)[0] == "200"


@contextmanager
def anonymous_requests(client, proxy_ip):
    """Status codes of requests without credentials sent twice a second while
    the block runs (401s without credentials never count toward a ban)."""
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


# The parts that read mlflow_stack_auth_mode: the auth database, the servers,
# the proxy (the firewall and the artifact store do not).
AUTH_MODE_TAGS = "postgresql,mlflow_server,nginx_proxy"


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
        "mlflow_verify_report_dir": str(lab.ephemeral / "verify-auth-app"),
    }
    with anonymous_requests(client, proxy_ip) as codes:
        first = lab.playbook("site.yml", "--tags", AUTH_MODE_TAGS + ",mlflow_verify", **settings)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert "all checks passed" in first.stdout
    report = json.loads((lab.ephemeral / "verify-auth-app" / "report.json").read_text())
    return {"settings": settings, "passwords": passwords, "report": report, "codes": codes}


# Switched on and off on Ubuntu, where the docker-mode server shares its
# host's network.


@on_ubuntu
def test_switching_the_auth_app_on_never_answers_without_credentials(auth_app):
    codes = auth_app["codes"]
    assert len(codes) > 20, codes
    assert "200" not in codes, codes


@on_ubuntu
def test_mlflow_auth_app_mode(lab, request_, alice, auth_app):
    """mlflow_stack_auth_mode=mlflow: MLflow's basic-auth app checks credentials and permissions."""
    admin, carol, dave = (auth_app["passwords"][n] for n in ("admin", "carol", "dave"))
    assert request_("GET", SEARCH)[0] == "401"
    assert request_("GET", SEARCH, user="alice", password=alice)[0] == "401", "htpasswd users are gone"
    assert request_("GET", SEARCH, user="admin", password=admin)[0] == "200"
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
        for n in lab.group("mlflow_server")
    }
    assert len(keys) == 1, "every server needs the same Flask secret key"
    # Successful checks are cached (scrypt costs ~250 ms a request otherwise).
    for server in lab.group("mlflow_server"):
        ini = lab.host(server).check_output("cat /etc/mlflow/basic_auth.ini")
        assert "auth_cache_ttl_seconds = 60" in ini.splitlines()


@on_ubuntu
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


@on_ubuntu
def test_auth_app_mode_rerun_changes_nothing(lab, auth_app):
    again = lab.playbook("site.yml", "--tags", AUTH_MODE_TAGS, **auth_app["settings"])
    assert again.returncode == 0, again.stdout[-4000:]
    recap = again.stdout[again.stdout.rindex("PLAY RECAP") :]
    changed = re.findall(r"changed=(\d+)", recap)
    assert changed, recap
    assert set(changed) == {"0"}, recap


@on_ubuntu
def test_switching_back_to_htpasswd_never_answers_without_credentials(lab, client, proxy_ip, request_, alice):
    """The same parts switch back (the database's rules for the auth app's
    database go too): playbooks/mlflow_server.yml's first play makes the
    proxies check credentials before MLflow's auth app goes off; before that
    order, the servers answered anyone until the proxy play ran. Whether
    anything was left behind, test_stack_operations.py's each-playbook-alone
    runs show (changed=0) on the same lab."""
    with anonymous_requests(client, proxy_ip) as codes:
        back = lab.playbook("site.yml", "--tags", AUTH_MODE_TAGS)
    assert back.returncode == 0, back.stdout[-4000:] + back.stderr[-2000:]
    assert len(codes) > 20, codes
    assert "200" not in codes, codes
    assert request_("GET", SEARCH)[0] == "401"
    assert request_("GET", SEARCH, user="alice", password=alice)[0] == "200"
    for server in lab.group("mlflow_server"):
        assert not lab.host(server).file("/etc/mlflow/basic_auth.ini").exists
