"""What the front door costs: authentication overhead and tracking throughput.

Prints figures; asserts nothing. Needs a running lab (`scripts/lab up`) and
the project's venv (mlflow installed). Everything runs on this machine, in
one run:

1. Authentication overhead through the lab's proxy (TLS, nginx basic auth):
   p50 of an authenticated GET through nginx minus the same GET sent straight
   to the MLflow servers, both over kept-alive connections, measured on the
   proxy host (the only host the firewall lets reach MLflow). Once as the
   lab's admin (a generated secret: SHA-512-crypt, 1000 rounds) and once as
   alice (a human password: bcrypt cost 12, what every user paid before).
2. MLflow's own auth app (mlflow_stack_auth_mode: mlflow): two local servers
   started here with `--app-name basic-auth`, auth_cache_ttl_seconds 0 and
   60; p50 of an authenticated GET minus the same server's /version.
3. Tracking throughput: CLIENTS concurrent clients, each run = create_run +
   log_batch (10 metrics, 10 params, 3 tags) + set_terminated, for SECONDS,
   against a tutorial-style `mlflow server` (SQLite, default workers, no
   proxy) started here, and against the lab through its front door.

Usage: .venv/bin/python bench/front_door.py [--clients 32] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import requests
import urllib3

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

NAME = "mlflow.lab.test"
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"

# Runs on the proxy host (python3 only): p50 in ms of GETs over one kept-alive
# connection, straight to each MLflow server and through nginx per user.
ON_PROXY = r"""
import base64, http.client, json, ssl, statistics, sys, time
name, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
upstreams = sys.argv[4].split(",")
users = json.loads(sys.stdin.read())
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE

def p50(conn, headers):
    taken = []
    for i in range(n + 5):
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse(); response.read()
        assert response.status == 200, response.status
        if i >= 5:
            taken.append(time.perf_counter() - start)
    return statistics.median(taken) * 1000

class Fresh:
    # A new connection per request, as the proxy connects to MLflow.

    def __init__(self, host, port):
        self.host, self.port = host, port

    def request(self, *args, **kwargs):
        self.conn = http.client.HTTPConnection(self.host, self.port)
        self.conn.request(*args, **kwargs)

    def getresponse(self):
        return self.conn.getresponse()

out = {
    "direct": statistics.median([p50(Fresh(*u.split(":")), {"Host": name}) for u in upstreams]),
    # uvicorn with several workers leaves Nagle on: reused connections wait for delayed ACKs.
    "direct_keepalive": statistics.median(
        [p50(http.client.HTTPConnection(*u.split(":")), {"Host": name}) for u in upstreams]),
}
for user, password in users.items():
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    conn = http.client.HTTPSConnection("127.0.0.1", 443, context=ctx)
    out[user] = p50(conn, {"Host": name, "Authorization": auth})
print(json.dumps(out))
"""


def lab_dir() -> Path:
    dirs = sorted(Path.home().glob(".ansible/tmp/molecule.*.stack"), key=lambda p: p.stat().st_mtime)
    if not dirs or not (dirs[-1] / "admin_password").exists():
        sys.exit("no lab: run scripts/lab up first")
    return dirs[-1]


def ip(container: str) -> str:
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
    return subprocess.check_output(["docker", "inspect", "-f", fmt, container], text=True).split()[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(*args: str, env: dict | None = None):
    """A local `mlflow server` on a free loopback port, in a scratch folder."""
    work = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += [
        "--backend-store-uri",
        f"sqlite:///{work}/mlflow.db",
        "--artifacts-destination",
        str(work / "art"),
    ]
    log = (work / "server.log").open("w")
    proc = subprocess.Popen(
        [*cmd, *args], cwd=work, stdout=log, stderr=log, env={**os.environ, **(env or {})}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            raise RuntimeError(f"mlflow server did not start: {(work / 'server.log').read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def p50_ms(session: requests.Session, url: str, n: int = 200, **kwargs) -> float:
    taken = []
    for i in range(n + 5):
        start = time.perf_counter()
        response = session.get(url, timeout=30, **kwargs)
        response.raise_for_status()
        if i >= 5:
            taken.append(time.perf_counter() - start)
    return statistics.median(taken) * 1000


def lab_auth_overhead(secrets: Path) -> dict:
    users = {"admin": (secrets / "admin_password").read_text().split()[0]}
    if (secrets / "alice_password").exists():
        users["alice"] = (secrets / "alice_password").read_text().split()[0]
    upstreams = ",".join(f"{ip(h)}:5000" for h in ("stk-ml1", "stk-ml2"))
    out = subprocess.run(
        ["docker", "exec", "-i", "stk-proxy", "python3", "-c", ON_PROXY, NAME, SEARCH, "200", upstreams],
        input=json.dumps(users),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def auth_app_overhead() -> dict:
    """p50 of the same authenticated search on a plain server and on auth-app servers (cache off, on)."""
    search = f"{SEARCH}"
    password = "bench-admin-password-0123456789"
    figures = {}
    with mlflow_server("--workers", "1") as url:
        figures["no auth app"] = p50_ms(requests.Session(), f"{url}{search}", auth=("admin", password))
    for ttl in (0, 60):
        work = Path(tempfile.mkdtemp(prefix="bench-auth-"))
        ini = work / "basic_auth.ini"
        ini.write_text(
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = sqlite:///{work}/auth.db\nadmin_username = admin\n"
            f"auth_cache_ttl_seconds = {ttl}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        env = {
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_AUTH_ADMIN_PASSWORD": password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "bench-secret-key",
        }
        with mlflow_server("--app-name", "basic-auth", "--workers", "1", env=env) as url:
            session = requests.Session()
            figures[f"auth app, cache {ttl} s"] = p50_ms(session, f"{url}{search}", auth=("admin", password))
        shutil.rmtree(work, ignore_errors=True)
    return figures


def throughput(base: str, clients: int, seconds: float, **kwargs) -> dict:
    """Runs/s and latency of whole runs from `clients` threads, each with a kept-alive session."""
    experiment = requests.post(
        f"{base}/api/2.0/mlflow/experiments/create",
        json={"name": f"bench-{time.time_ns()}"},
        timeout=60,
        **kwargs,
    ).json()["experiment_id"]
    lock = threading.Lock()
    taken: list[float] = []
    errors = [0]
    end = time.time() + seconds

    def client() -> None:
        session = requests.Session()
        while time.time() < end:
            start = time.perf_counter()
            try:
                run = session.post(
                    f"{base}/api/2.0/mlflow/runs/create",
                    json={"experiment_id": experiment, "start_time": int(time.time() * 1000)},
                    timeout=120,
                    **kwargs,
                )
                run.raise_for_status()
                run_id = run.json()["run"]["info"]["run_id"]
                now = int(time.time() * 1000)
                session.post(
                    f"{base}/api/2.0/mlflow/runs/log-batch",
                    json={
                        "run_id": run_id,
                        "metrics": [
                            {"key": f"m{i}", "value": i * 0.5, "timestamp": now, "step": 0} for i in range(10)
                        ],
                        "params": [{"key": f"p{i}", "value": str(i)} for i in range(10)],
                        "tags": [{"key": f"t{i}", "value": "x"} for i in range(3)],
                    },
                    timeout=120,
                    **kwargs,
                ).raise_for_status()
                session.post(
                    f"{base}/api/2.0/mlflow/runs/update",
                    json={"run_id": run_id, "status": "FINISHED", "end_time": now},
                    timeout=120,
                    **kwargs,
                ).raise_for_status()
            except requests.RequestException:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                taken.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    q = statistics.quantiles(taken, n=100) if len(taken) > 1 else [0.0] * 99
    return {
        "runs/s": len(taken) / elapsed,
        "p50 s": statistics.median(taken) if taken else 0.0,
        "p95 s": q[94],
        "p99 s": q[98],
        "errors": errors[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    secrets = lab_dir()

    print("== Authentication overhead through the lab's proxy (p50, kept-alive, measured on stk-proxy)")
    lab = lab_auth_overhead(secrets)
    print(f"   straight to MLflow, a new connection per request (as the proxy): {lab['direct']:7.2f} ms")
    print(
        f"   straight to MLflow, one kept-alive connection (uvicorn #3149): {lab['direct_keepalive']:7.2f} ms"
    )
    for user, label in (
        ("admin", "generated secret, SHA-512-crypt 1000"),
        ("alice", "human password, bcrypt 12"),
    ):
        if user in lab:
            print(
                f"   via nginx as {user:5} ({label}): {lab[user]:7.2f} ms"
                f"  overhead {lab[user] - lab['direct']:7.2f} ms"
            )

    print("== MLflow's auth app (local servers, 1 worker, SQLite, p50 of an authenticated search)")
    app = auth_app_overhead()
    for label, value in app.items():
        print(f"   {label:24} {value:7.2f} ms  overhead {value - app['no auth app']:7.2f} ms")

    print(f"== Tracking throughput, {args.clients} clients, {args.seconds:.0f} s each")
    rows = {}
    with mlflow_server() as tutorial:
        rows["tutorial mlflow server (SQLite, no proxy)"] = throughput(tutorial, args.clients, args.seconds)
    admin = ("admin", (secrets / "admin_password").read_text().split()[0])
    rows["lab via nginx/TLS/auth (PostgreSQL, S3)"] = throughput(
        f"https://{ip('stk-proxy')}",
        args.clients,
        args.seconds,
        auth=admin,
        headers={"Host": NAME},
        verify=False,
    )
    print(f"   {'target':44} {'runs/s':>7} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} {'errors':>7}")
    for name, r in rows.items():
        print(
            f"   {name:44} {r['runs/s']:7.1f} {r['p50 s']:7.2f} {r['p95 s']:7.2f} {r['p99 s']:7.2f}"
            f" {r['errors']:7d}"
        )
    tutorial_rate, ours = (r["runs/s"] for r in rows.values())
    print(f"   ratio ours/tutorial: {ours / tutorial_rate:.2f}")


if __name__ == "__main__":
    main()
