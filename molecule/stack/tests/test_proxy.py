"""The front door's own behaviour (role nginx_proxy), tried from stk-outsider,
a client in no group: every route behind credentials, TLS, headers, body
limits, both servers used and one stopping, users removed (runs after
test_front_door.py, whose flood leaves stk-outsider unbanned). MLflow's auth
app is switched on and off in the all-in-one lab (molecule/default)."""

from __future__ import annotations

import json
import re
import secrets
import time

import pytest
from labtest.front_door import FrontDoor, access_log, access_log_length, ui_asset
from labtest.hosts import AS_PROXY, program, upstream, wait_healthy
from labtest.lab import changed_tasks, q, scenario

LAB = scenario()
NAME = LAB.var("stk-proxy", "mlflow_stack_public_name")
(ALIAS,) = LAB.var("stk-proxy", "mlflow_stack_public_aliases")
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


@pytest.fixture(scope="module")
def proxy(lab):
    return lab.host("stk-proxy")


@pytest.fixture(scope="module")
def door(lab):
    return FrontDoor(lab, client="stk-outsider", proxy="stk-proxy")


@pytest.fixture(scope="module")
def client(door):
    """stk-outsider with curl and openssl, and the lab's CA."""
    return door.client


@pytest.fixture(scope="module")
def alice(lab):
    return lab.secret("alice_password")


@pytest.fixture(scope="module")
def request_(door):
    """HTTP status (and headers) of a request through the proxy, from the client."""
    return door.request


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


def test_the_ui_assets_are_kept_by_the_proxy_and_by_browsers(proxy, door, request_, alice):
    """Content-hashed: browsers keep them a year, the proxy answers them
    from its cache (no MLflow server asked), and only with credentials.
    test_stack_operations.py shows them served while every server is stopped."""
    asset = ui_asset(door.get("/", user="alice", password=alice))
    assert request_("GET", asset)[0] == "401"
    status, headers = request_("GET", asset, user="alice", password=alice)
    assert status == "200"
    headers = headers.lower()
    assert re.search(r"^cache-control: private, max-age=31536000, immutable\s*$", headers, re.M), headers
    assert "x-content-type-options: nosniff" in headers
    logged = access_log_length(proxy)
    assert request_("GET", asset, user="alice", password=alice)[0] == "200"
    (line,) = access_log(proxy, logged)
    assert "upstream=- " in line, line  # answered without MLflow
    # MLflow's data is never kept: each answer comes from a server.
    logged = access_log_length(proxy)
    assert request_("GET", "/", user="alice", password=alice)[0] == "200"
    (line,) = access_log(proxy, logged)
    assert "upstream=- " not in line, line


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


def test_one_gib_upload_passes_through(door, client, request_, alice):
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
    listing = door.get("/api/2.0/mlflow-artifacts/artifacts?path=big", user="alice", password=alice)
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
        wait_healthy(lab.host("stk-proxy"), upstream(lab, "stk-ml1"), env=AS_PROXY)


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


@pytest.fixture(scope="module")
def changed_proxy(lab, alice):
    """playbooks/nginx_proxy.yml with bob added and stk-outsider trusted as a
    load balancer in front of the proxy; test_removed_user_is_locked_out
    runs it again with the inventory's settings."""
    bob = secrets.token_urlsafe(16)
    users = [
        {"name": "admin", "password": lab.secret("admin_password"), "generated": True},
        {"name": "alice", "password": alice},
    ]
    added = lab.playbook(
        "playbooks/nginx_proxy.yml",
        nginx_proxy_users=[*users, {"name": "bob", "password": bob}],
        nginx_proxy_trusted_proxies=[lab.ip("stk-outsider")],
    )
    assert added.returncode == 0, added.stdout[-3000:]
    return {"bob": bob}


FORGED = program("forged")


def banned(proxy) -> str:
    return proxy.check_output("fail2ban-client status mlflow-proxy").split("Banned IP list:")[1]


def test_a_trusted_load_balancer_names_the_client_and_only_that_client_is_banned(
    lab, proxy, request_, alice, changed_proxy
):
    """stk-outsider as a load balancer the proxy trusts: a client it forwards
    (X-Forwarded-For) that keeps failing to log in is banned, and nginx
    refuses it (403) while another client of the same balancer, and the
    balancer itself, still get in. A host that is not trusted cannot choose
    the address it is logged and banned under."""
    outsider = lab.ip("stk-outsider")
    proxy.run(f"fail2ban-client set mlflow-proxy unbanip {outsider}")
    flooding, other = "198.51.100.7", "198.51.100.8"

    def through_balancer(client, user, password):
        header = f"-H 'X-Forwarded-For: {client}'"
        return request_("GET", SEARCH, user=user, password=password, extra=(header,))[0]

    maxretry = int(proxy.check_output("fail2ban-client get mlflow-proxy maxretry"))
    for _ in range(maxretry + 1):
        assert through_balancer(flooding, "alice", "wrong") == "401"
    for _ in range(100):
        if flooding in banned(proxy):
            break
        time.sleep(0.2)
    try:
        assert flooding in banned(proxy), "the client behind the balancer was not banned"
        assert outsider not in banned(proxy), "the balancer itself was banned"
        assert through_balancer(flooding, "alice", alice) == "403"
        assert through_balancer(other, "alice", alice) == "200"
        assert request_("GET", SEARCH, user="alice", password=alice)[0] == "200"
        # stk-ml1 is no balancer: its header is ignored, its own address counts.
        forged = lab.host("stk-ml1").check_output(
            f"python3 -c {q(FORGED)} {lab.ip('stk-proxy')} {NAME} {flooding} {q('alice:' + alice)}"
        )
        assert forged == "200"
        assert access_log(proxy, access_log_length(proxy) - 1)[0].startswith(lab.ip("stk-ml1") + " ")
    finally:
        proxy.run(f"fail2ban-client set mlflow-proxy unbanip {flooding}")
        # The unban rewrites nginx's list and reloads nginx after the command
        # returns: the next test starts once that reload is over (a connection
        # an old worker accepts as it shuts down is closed: curl's 000).
        for _ in range(100):
            if flooding not in proxy.file("/etc/nginx/mlflow-banned.conf").content_string:
                break
            time.sleep(0.2)
        time.sleep(1)  # the reload right after the list is written
        for _ in range(100):
            # [w]: the pattern does not match the shell that runs pgrep.
            if not proxy.run("pgrep -f '[w]orker process is shutting down'").stdout:
                break
            time.sleep(0.2)


def test_removed_user_is_locked_out(lab, request_, alice, changed_proxy):
    """bob added (and a load balancer trusted), then the inventory's settings
    again: bob is refused, the others are not. The second run is
    playbooks/nginx_proxy.yml alone with the inventory: it changes the users
    file, the site and the jail, and nothing else (alone, it gets what
    site.yml gives the proxy)."""
    bob = changed_proxy["bob"]
    assert request_("GET", "/version", user="bob", password=bob)[0] == "200"
    removed = lab.playbook("playbooks/nginx_proxy.yml")
    assert removed.returncode == 0, removed.stdout[-3000:]
    expected = {
        (f"nginx_proxy : {task}", "stk-proxy")
        for task in (
            "Write the users file",
            "Write the MLflow site",
            "Reload nginx",
            "Write the jail",
            "Restart fail2ban",
        )
    }
    assert changed_tasks(removed) == expected, changed_tasks(removed) ^ expected
    assert request_("GET", "/version", user="bob", password=bob)[0] == "401"
    assert request_("GET", "/version", user="alice", password=alice)[0] == "200"
