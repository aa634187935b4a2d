"""Benchmarks of the deployed stack against a tutorial-style `mlflow server`,
measured in one run on this machine. Prints figures and writes them (report.md,
results.json, tracking.png) to --out; asserts nothing.

  .venv/bin/python bench/front_door.py            # all sections, ~25 min
  .venv/bin/python bench/front_door.py --only tracking --clients 1,8 --seconds 10

Sections (--only, comma-separated; default all):
  provision  fresh containers to a verified stack (only when no lab is up, or
             with --fresh, which removes it first), then the idempotent re-run:
             `scripts/lab up` each time, wall seconds and the changed count
  tracking   bench/load.py (a training job's requests: runs/create, log-batch,
             5 x log-metric, runs/search, runs/update) at each --clients level
             against: a tutorial-style server started here (`mlflow server`,
             SQLite, default workers, no proxy, loopback); the lab through its
             front door (nginx, TLS, basic auth; PostgreSQL, S3); the lab's
             MLflow servers hit directly from the proxy host (the only host the
             firewall lets in), which gives the proxy/TLS/auth layer's share;
             plus the in-process ceiling (bench/ceiling.py: MLflow's SQL store
             with no HTTP, one thread) on SQLite here and on the lab's PostgreSQL
  profile    where one MLflow worker's CPU goes at 32 clients through the front
             door: py-spy samples (Python holding the GIL) grouped by layer
  artifacts  --artifact-mib (1 GiB) up and down through the front door, straight
             to an MLflow server from the proxy host, and straight to the S3
             server from an MLflow host (bench/transfer.py, bench/s3_throughput.py)
  auth       p50 cost of one authenticated request: nginx basic auth per hash
             scheme, MLflow's auth app with and without its cache
  internal-tls  what the encrypted hops inside the stack cost (mutual TLS to
             MLflow, TLS to PostgreSQL and S3): --tls-clients clients through
             the front door with them (the lab as it is), after site.yml
             turned them off (mlflow_stack_internal_tls=false), and on again,
             beside the tutorial server at the same load; the lab is left as
             its inventory says

Everything stays on loopback or the lab's own containers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
NAME = "mlflow.lab.test"
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"
SERVERS = ("stk-ml1", "stk-ml2")
ENV_FILE = "/etc/mlflow/mlflow.env"
BUCKET = "mlflow"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def lab_dir() -> Path | None:
    dirs = sorted(Path.home().glob(".ansible/tmp/molecule.*.stack"), key=lambda p: p.stat().st_mtime)
    return dirs[-1] if dirs and (dirs[-1] / "admin_password").exists() else None


def lab_running() -> bool:
    if lab_dir() is None:
        return False
    names = subprocess.run(
        ["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True, check=False
    ).stdout.split()
    return {"stk-proxy", *SERVERS} <= set(names)


def ip(container: str) -> str:
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
    return subprocess.check_output(["docker", "inspect", "-f", fmt, container], text=True).split()[0]


def admin_password() -> str:
    return (lab_dir() / "admin_password").read_text().split()[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_json(cmd: list[str], stdin: str = "", where: str = "") -> dict:
    """Runs a bench script (here or in a container) and returns the JSON it prints."""
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{where or cmd[0]} failed ({done.returncode}): {done.stderr[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# The proxy's client certificate: the lab's MLflow servers answer no other
# (mutual TLS), so the "direct" figures are taken from the proxy host with it.
PROXY_CERT = "/etc/nginx/tls/upstream-client.crt:/etc/nginx/tls/upstream-client.key"


def in_container(container: str, script: str, *args: str, python: str = "python3", stdin: str = "") -> dict:
    """A bench script run on a lab host with benchlib (both sent on the command
    line; stdin is its input; on the proxy host with the proxy's certificate)."""
    source, lib = (BENCH / script).read_text(), (BENCH / "benchlib.py").read_text()
    program = (
        f"import sys, types; sys.modules['benchlib'] = lib = types.ModuleType('benchlib'); "
        f"exec(compile({lib!r}, 'benchlib.py', 'exec'), lib.__dict__); "
        f"exec(compile({source!r}, {script!r}, 'exec'))"
    )
    env = ["-e", f"BENCH_CLIENT_CERT={PROXY_CERT}"] if container == "stk-proxy" else []
    docker = ["docker", "exec", "-i", *env, container]
    return run_json(
        [*docker, python, "-c", program, *args],
        stdin,
        f"{script} on {container}",
    )


def venv_python(container: str) -> str:
    """The newest MLflow venv's python on an MLflow host (systemd mode) or in its container (docker mode)."""
    return subprocess.check_output(
        [
            "docker",
            "exec",
            container,
            "sh",
            "-c",
            "ls -d /opt/mlflow/venvs/*/bin/python | sort -V | tail -n1",
        ],
        text=True,
    ).strip()


@contextmanager
def mlflow_server(*args: str, env: dict | None = None):
    """A tutorial-style `mlflow server` on a free loopback port, in a scratch folder."""
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
    logfile = (work / "server.log").open("w")
    proc = subprocess.Popen(
        [*cmd, *args], cwd=work, stdout=logfile, stderr=logfile, env={**os.environ, **(env or {})}
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


# ---------------------------------------------------------------- provision


def lab_up(out: Path, label: str) -> dict:
    """`scripts/lab up`, timed; the changed count from its last play recap."""
    logfile = out / f"provision-{label}.log"
    began = time.monotonic()
    with logfile.open("w") as f:
        done = subprocess.run(
            [str(ROOT / "scripts/lab"), "up"], stdout=f, stderr=subprocess.STDOUT, check=False
        )
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError(f"scripts/lab up failed, see {logfile}")
    text = logfile.read_text()
    recap = text[text.rindex("PLAY RECAP") :]
    hosts = re.findall(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)", recap, re.M)
    return {
        "seconds": seconds,
        "changed": sum(int(changed) for _, _, changed in hosts),
        "tasks_ok": sum(int(ok) for _, ok, _ in hosts),
        "log": str(logfile),
    }


def provision(out: Path, fresh: bool) -> dict:
    figures = {}
    if fresh and lab_running():
        log("removing the running lab (--fresh)")
        subprocess.run([str(ROOT / "scripts/lab"), "down"], check=True, capture_output=True)
    if not lab_running():
        log("fresh containers to a verified stack: scripts/lab up")
        figures["fresh"] = lab_up(out, "fresh")
    log("idempotent re-run: scripts/lab up")
    figures["rerun"] = lab_up(out, "rerun")
    return figures


# ---------------------------------------------------------------- tracking


def via_front_door(script: str, *args: str) -> list[str]:
    """A bench script run here against the lab's proxy as its admin (the
    password goes on stdin: admin_password())."""
    proxy = f"https://{ip('stk-proxy')}"
    login = ["--user", "admin", "--password-stdin"]
    return [sys.executable, str(BENCH / script), "--url", proxy, "--host", NAME, *login, *args]


def load(target: str, clients: int, seconds: float) -> dict:
    """bench/load.py against the lab: "front door" or "direct", at one concurrency."""
    common = ["--clients", str(clients), "--seconds", str(seconds)]
    if target == "front door":
        return run_json(via_front_door("load.py", *common), admin_password() + "\n")
    upstreams = ",".join(f"https://{ip(server)}:5000" for server in SERVERS)
    return in_container("stk-proxy", "load.py", "--url", upstreams, "--host", NAME, *common)


def tracking(levels: list[int], seconds: float) -> dict:
    rows: dict[str, dict[int, dict]] = {"tutorial": {}, "front door": {}, "direct": {}}
    with mlflow_server() as url:
        for clients in levels:
            log(f"tracking: tutorial server, {clients} clients")
            rows["tutorial"][clients] = run_json(
                [
                    sys.executable,
                    str(BENCH / "load.py"),
                    "--url",
                    url,
                    "--clients",
                    str(clients),
                    "--seconds",
                    str(seconds),
                ]
            )
    for target in ("front door", "direct"):
        for clients in levels:
            log(f"tracking: lab {target}, {clients} clients")
            rows[target][clients] = load(target, clients, seconds)
    log("tracking: in-process ceiling, SQLite here and PostgreSQL from stk-ml1")
    ceiling = {
        "sqlite": run_json([sys.executable, str(BENCH / "ceiling.py")]),
        "postgresql": in_container(
            "stk-ml1", "ceiling.py", "--env-file", ENV_FILE, python=venv_python("stk-ml1")
        ),
    }
    return {"levels": rows, "ceiling": ceiling, "seconds": seconds}


# ---------------------------------------------------------------- internal TLS


def lab_site(*extra: str) -> None:
    """site.yml on the running lab without the verification, as scripts/lab
    would run it (the scenario's inventory and lab secrets)."""
    directory = lab_dir()
    env = {
        **os.environ,
        "MOLECULE_EPHEMERAL_DIRECTORY": str(directory),
        "MOLECULE_PROJECT_DIRECTORY": str(ROOT),
        "MOLECULE_SCENARIO_NAME": "stack",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i",
        str(directory / "inventory" / "ansible_inventory.yml"),
        "--skip-tags",
        "mlflow_verify",
        *extra,
        str(ROOT / "site.yml"),
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"site.yml {' '.join(extra)} failed: {done.stdout[-3000:]}")


def internal_tls(clients: int, seconds: float) -> dict:
    """Front-door throughput with the stack's inner hops encrypted and not, in
    one run: on (as converged), off, on again (the two "on" figures show the
    drift between them), and the tutorial server at the same load."""
    figures: dict = {"clients": clients, "seconds": seconds}
    with mlflow_server() as url:
        log(f"internal TLS: tutorial server, {clients} clients")
        command = [sys.executable, str(BENCH / "load.py"), "--url", url, "--clients", str(clients)]
        figures["tutorial"] = run_json([*command, "--seconds", str(seconds)])
    try:
        for label, setting in (("on", None), ("off", "false"), ("on again", "true")):
            if setting is not None:
                log(f"internal TLS: site.yml with mlflow_stack_internal_tls={setting}")
                began = time.monotonic()
                lab_site("-e", f"mlflow_stack_internal_tls={setting}")
                figures[f"switch to {label} (s)"] = round(time.monotonic() - began)
            log(f"internal TLS {label}: front door, {clients} clients")
            figures[label] = load("front door", clients, seconds)
    finally:
        if "on again" not in figures:
            log("internal TLS: putting the lab back as its inventory says")
            lab_site()
    first, again = figures["on"]["requests_per_s"], figures["on again"]["requests_per_s"]
    on = (first + again) / 2
    figures["off/on"] = figures["off"]["requests_per_s"] / on if on else None
    figures["on spread"] = abs(first - again) / on if on else None
    return figures


# ---------------------------------------------------------------- profile

# Layers a sampled stack passes through (a stack counts for each it touches).
LAYERS = {
    "ASGI server (uvicorn, event loop, HTTP parser)": r"uvicorn/|uvloop|httptools|h11/|asyncio/",
    "FastAPI/Starlette and MLflow's security middleware": r"starlette/|fastapi/",
    "of which MLflow's security middleware": r"mlflow/server/(fastapi_)?security",
    "Flask and the WSGI bridge": r"flask/|werkzeug/|a2wsgi",
    "MLflow's handlers": r"mlflow/server/handlers",
    "SQLAlchemy": r"sqlalchemy/",
    "psycopg (PostgreSQL driver)": r"psycopg",
    "request: runs/search": r"_search_runs",
    "request: runs/log-metric": r"_log_metric",
    "request: runs/log-batch": r"_log_batch",
    "request: runs/create": r"_create_run",
}


def profile(seconds: float, clients: int = 32) -> dict:
    """Where one MLflow worker's CPU goes under the front door's load: py-spy
    samples one uvicorn worker of stk-ml1 (only while a thread holds the GIL,
    that is, runs Python) during `clients` clients through the proxy."""
    pid = next(
        line.split()[0]
        for line in subprocess.check_output(
            ["docker", "top", "stk-ml1", "-eo", "pid,args"], text=True
        ).splitlines()
        if "spawn_main" in line and "resource_tracker" not in line
    )
    load_cmd = via_front_door("load.py", "--clients", str(clients), "--seconds", str(seconds + 5))
    raw = Path(tempfile.mkdtemp(prefix="bench-profile-")) / "raw.txt"
    rate = 100
    load_proc = subprocess.Popen(load_cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    load_proc.stdin.write(admin_password() + "\n")
    load_proc.stdin.close()
    time.sleep(5)
    spy = Path(sys.executable).with_name("py-spy")
    subprocess.run(
        [
            str(spy),
            "record",
            "--pid",
            pid,
            "--gil",
            "--nonblocking",
            "--rate",
            str(rate),
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        capture_output=True,
        check=True,
    )
    load_proc.wait(timeout=seconds + 300)
    total = 0
    layers = dict.fromkeys(LAYERS, 0)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for layer, pattern in LAYERS.items():
            if re.search(pattern, stack):
                layers[layer] += int(count)
    shutil.rmtree(raw.parent, ignore_errors=True)
    return {
        "clients": clients,
        "seconds": seconds,
        "worker_cpu": total / (rate * seconds),
        "layers": {layer: n / total for layer, n in layers.items()} if total else {},
    }


# ---------------------------------------------------------------- artifacts


def artifacts(size_mib: int) -> dict:
    size = ["--size-mib", str(size_mib)]
    log(f"artifacts: {size_mib} MiB through the front door")
    front = run_json(via_front_door("transfer.py", *size), admin_password() + "\n")
    log(f"artifacts: {size_mib} MiB straight to stk-ml1's MLflow from the proxy host")
    direct = in_container(
        "stk-proxy", "transfer.py", "--url", f"https://{ip('stk-ml1')}:5000", "--host", NAME, *size
    )
    log(f"artifacts: {size_mib} MiB straight to the S3 server from stk-ml1")
    s3 = in_container(
        "stk-ml1",
        "s3_throughput.py",
        "--env-file",
        ENV_FILE,
        "--bucket",
        BUCKET,
        *size,
        python=venv_python("stk-ml1"),
    )
    return {"front door": front, "mlflow direct": direct, "s3 direct": s3}


# Runs on the proxy host (python3 only): p50 in ms of GETs over one kept-alive
# connection, straight to each MLflow server and through nginx per user.
ON_PROXY = r"""
import base64, http.client, json, ssl, statistics, sys, time
name, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
upstreams = sys.argv[4].split(",")
users = json.loads(sys.stdin.read())
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
# The servers require the proxy's client certificate (mutual TLS).
up = ssl.create_default_context(); up.check_hostname = False; up.verify_mode = ssl.CERT_NONE
up.load_cert_chain("/etc/nginx/tls/upstream-client.crt", "/etc/nginx/tls/upstream-client.key")

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
        self.conn = http.client.HTTPSConnection(self.host, self.port, context=up)
        self.conn.request(*args, **kwargs)

    def getresponse(self):
        return self.conn.getresponse()

out = {
    "direct": statistics.median([p50(Fresh(*u.split(":")), {"Host": name}) for u in upstreams]),
    # uvicorn with several workers leaves Nagle on: reused connections wait for delayed ACKs.
    "direct_keepalive": statistics.median(
        [p50(http.client.HTTPSConnection(*u.split(":"), context=up), {"Host": name}) for u in upstreams]),
}
for user, password in users.items():
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    conn = http.client.HTTPSConnection("127.0.0.1", 443, context=ctx)
    out[user] = p50(conn, {"Host": name, "Authorization": auth})
print(json.dumps(out))
"""


def lab_auth_overhead(secrets: Path) -> dict:
    """p50 through nginx per user and straight to the servers, measured on stk-proxy."""
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


# ---------------------------------------------------------------- auth


def p50_ms(session: requests.Session, url: str, n: int = 200, **kwargs) -> float:
    taken = []
    for i in range(n + 5):
        start = time.perf_counter()
        session.get(url, timeout=30, **kwargs).raise_for_status()
        if i >= 5:
            taken.append(time.perf_counter() - start)
    return statistics.median(taken) * 1000


def auth() -> dict:
    log("auth: p50 through nginx per hash scheme (on stk-proxy), MLflow's auth app (local servers)")
    secrets = lab_dir()
    return {"nginx": lab_auth_overhead(secrets), "auth app": auth_app_overhead()}


# ---------------------------------------------------------------- report


def report(results: dict, out: Path) -> str:
    lines = [f"# Benchmarks, {time.strftime('%Y-%m-%d %H:%M')} ({os.cpu_count()} CPUs, one machine)", ""]
    if "provision" in results:
        lines += ["## Provisioning (`scripts/lab up`)", "", "| run | seconds | changed |", "|---|---|---|"]
        for label, row in results["provision"].items():
            lines.append(f"| {label} | {row['seconds']:.0f} | {row['changed']} |")
        lines.append("")
    if "tracking" in results:
        track = results["tracking"]
        rows = track["levels"]
        lines += [
            f"## Tracking ({track['seconds']:.0f} s per point; requests of bench/load.py)",
            "",
            "| target | clients | runs/s | requests/s | p50 ms | p95 ms | p99 ms | errors | ours/tutorial |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for target, levels in rows.items():
            for clients, r in levels.items():
                base = rows["tutorial"][clients]["requests_per_s"]
                ratio = f"{r['requests_per_s'] / base:.2f}" if base else "-"
                lines.append(
                    f"| {target} | {clients} | {r['runs_per_s']:.1f} | {r['requests_per_s']:.0f}"
                    f" | {r['p50_ms']:.0f}"
                    f" | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} | {ratio} |"
                )
        lines += ["", "Proxy/TLS/auth layer (front door against the same servers hit directly):", ""]
        for clients in rows["direct"]:
            direct, front = rows["direct"][clients], rows["front door"][clients]
            if direct["requests_per_s"]:
                cost = 1 - front["requests_per_s"] / direct["requests_per_s"]
                lines.append(
                    f"- {clients} clients: throughput {cost:+.1%} lost,"
                    f" p99 {front['p99_ms']:.0f} vs {direct['p99_ms']:.0f} ms"
                )
        lines += ["", "In-process ceiling (MLflow's SQL store, no HTTP, one thread):", ""]
        for store, c in track["ceiling"].items():
            lines.append(
                f"- {store}: {c['runs_per_s']:.1f} runs/s, {c['requests_per_s']:.0f} requests/s per core"
            )
        lines.append("")
    if "profile" in results:
        prof = results["profile"]
        lines += [
            f"## Where an MLflow worker's CPU goes ({prof['clients']} clients via the front door, py-spy)",
            "",
            f"One uvicorn worker of stk-ml1 ran Python {prof['worker_cpu']:.0%} of the time (of one core);"
            " share of its samples per layer (a sample counts for every layer its stack passes through):",
            "",
        ]
        lines += [f"- {layer}: {share:.0%}" for layer, share in prof["layers"].items()]
        lines.append("")
    if "artifacts" in results:
        art = results["artifacts"]
        s3 = art["s3 direct"]
        lines += [
            f"## Large artifact ({s3['size_mib']} MiB)",
            "",
            "| path | upload MiB/s | download MiB/s | of direct S3 (up / down) | intact |",
            "|---|---|---|---|---|",
        ]
        for path, r in art.items():
            lines.append(
                f"| {path} | {r['upload_mib_s']:.0f} | {r['download_mib_s']:.0f} |"
                f" {r['upload_mib_s'] / s3['upload_mib_s']:.0%} /"
                f" {r['download_mib_s'] / s3['download_mib_s']:.0%} |"
                f" {r['intact']} |"
            )
        lines.append("")
    if "auth" in results:
        nginx, app = results["auth"]["nginx"], results["auth"]["auth app"]
        lines += ["## Authentication, p50 of one request", ""]
        lines.append(
            "- straight to MLflow, a new connection per request (as nginx connects):"
            f" {nginx['direct']:.2f} ms"
        )
        lines.append(f"- straight to MLflow, one kept-alive connection: {nginx['direct_keepalive']:.2f} ms")
        for user, label in (
            ("admin", "generated secret, SHA-512-crypt"),
            ("alice", "human password, bcrypt 12"),
        ):
            if user in nginx:
                lines.append(
                    f"- via nginx as {user} ({label}): {nginx[user]:.2f} ms,"
                    f" +{nginx[user] - nginx['direct']:.2f} ms"
                )
        for label, value in app.items():
            lines.append(f"- {label}: {value:.2f} ms, +{value - app['no auth app']:.2f} ms")
        lines.append("")
    if "internal_tls" in results:
        tls = results["internal_tls"]
        base = tls["tutorial"]["requests_per_s"]
        lines += [
            f"## Inner hops encrypted or not ({tls['clients']} clients, {tls['seconds']:.0f} s each)",
            "",
            "| internal TLS | requests/s | p50 ms | p99 ms | errors | ours/tutorial |",
            "|---|---|---|---|---|---|",
        ]
        for label in ("on", "off", "on again", "tutorial"):
            r = tls[label]
            figures = f"{r['requests_per_s']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']}"
            lines.append(f"| {label} | {figures} | {r['requests_per_s'] / base:.2f} |")
        lines += [
            "",
            f"Off/on (mean of both on runs): {tls['off/on']:.2f}; the two on runs differ by"
            f" {tls['on spread'] * 100:.0f} %"
            " (a difference smaller than that is noise).",
            "",
        ]
    text = "\n".join(lines)
    (out / "report.md").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return text


def plot(results: dict, out: Path) -> Path | None:
    if "tracking" not in results:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for target, levels in results["tracking"]["levels"].items():
        clients = sorted(levels)
        left.plot(clients, [levels[c]["requests_per_s"] for c in clients], marker="o", label=target)
        right.plot(clients, [levels[c]["p99_ms"] for c in clients], marker="o", label=target)
    for store, c in results["tracking"]["ceiling"].items():
        left.axhline(c["requests_per_s"], linestyle=":", color="grey")
        left.annotate(f"in-process {store}, 1 core", (1, c["requests_per_s"]), fontsize=7, color="grey")
    left.set(xscale="log", xlabel="concurrent clients", ylabel="requests/s", title="Throughput")
    right.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="ms", title="p99 latency")
    levels = sorted(next(iter(results["tracking"]["levels"].values())))
    for ax in (left, right):
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = out / "tracking.png"
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="provision,tracking,profile,artifacts,auth,internal-tls")
    parser.add_argument("--fresh", action="store_true", help="remove a running lab first (provision)")
    parser.add_argument("--clients", default="1,8,32,64")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--artifact-mib", type=int, default=1024)
    parser.add_argument("--tls-clients", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts/bench")
    args = parser.parse_args()
    sections = args.only.split(",")
    unknown = set(sections) - {"provision", "tracking", "profile", "artifacts", "auth", "internal-tls"}
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)

    results: dict = {}
    if "provision" in sections:
        results["provision"] = provision(args.out, args.fresh)
    if not lab_running():
        sys.exit("no lab: run scripts/lab up first (or include the provision section)")
    if "tracking" in sections:
        results["tracking"] = tracking([int(c) for c in args.clients.split(",")], args.seconds)
    if "profile" in sections:
        log("profile: py-spy on one MLflow worker of stk-ml1, 32 clients through the front door")
        results["profile"] = profile(args.seconds)
    if "artifacts" in sections:
        results["artifacts"] = artifacts(args.artifact_mib)
    if "auth" in sections:
        results["auth"] = auth()
    if "internal-tls" in sections:
        results["internal_tls"] = internal_tls(args.tls_clients, args.seconds)
    print(report(results, args.out))
    png = plot(results, args.out)
    print(f"written: {args.out / 'report.md'}, {args.out / 'results.json'}" + (f", {png}" if png else ""))


if __name__ == "__main__":
    main()
