"""Fixtures shared by every scenario's testinfra verifier.

Molecule runs the verifier with MOLECULE_INVENTORY_FILE and
MOLECULE_EPHEMERAL_DIRECTORY set; hosts are reached through that inventory.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import boto3
import pytest
import testinfra
from botocore.config import Config

PROJECT = Path(__file__).resolve().parent.parent


@dataclass
class Lab:
    inventory: str
    ephemeral: Path

    @staticmethod
    def container(name: str) -> str:
        """The container of inventory host `name` (its ansible_host: shared/create.yml)."""
        return name + os.environ.get("MLFLOW_LAB_SUFFIX", "")

    def host(self, name: str):
        return testinfra.get_host(f"docker://{self.container(name)}")

    def ip(self, name: str) -> str:
        """The instance's address on the scenario network (not on a nested engine's bridge)."""
        out = subprocess.run(
            [
                "docker",
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                self.container(name),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.split()[0]

    def s3(self, name: str, port: int = 8333):
        """An S3 client for the SeaweedFS instance `name`, with the scenario's keys."""
        return boto3.client(
            "s3",
            endpoint_url=f"http://{self.ip(name)}:{port}",
            aws_access_key_id=self.secret("s3_access_key"),
            aws_secret_access_key=self.secret("s3_secret_key"),
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )

    def secret(self, name: str) -> str:
        """A test secret written by the scenario's password lookup."""
        return (self.ephemeral / name).read_text().split()[0]

    def var(self, host: str, name: str):
        """A variable of `host` as the scenario's inventory sets it (templated)."""
        out = subprocess.run(
            ["ansible", "-i", self.inventory, host, "-m", "ansible.builtin.debug", "-a", f"var={name}"],
            # JSON alone on stdout: no other callback (profile_tasks, when set
            # for a profiled run) may print there.
            env={
                **{k: v for k, v in os.environ.items() if k != "ANSIBLE_CALLBACKS_ENABLED"},
                "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                "ANSIBLE_STDOUT_CALLBACK": "json",
            },
            cwd=PROJECT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(out)["plays"][0]["tasks"][0]["hosts"][host][name]

    def group(self, name: str) -> list[str]:
        """The hosts of an inventory group, in inventory order."""
        out = subprocess.run(
            ["ansible", "-i", self.inventory, name, "--list-hosts"],
            cwd=PROJECT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return [line.strip() for line in out.splitlines()[1:] if line.strip()]

    def playbook(
        self, playbook: str, *options: str, on_line: Callable[[str], None] | None = None, **extra_vars: object
    ) -> subprocess.CompletedProcess:
        """ansible-playbook on the scenario's inventory; options such as "--tags", "x".
        on_line sees each line of its output as it comes (to act at a task)."""
        cmd = ["ansible-playbook", "-i", self.inventory, *options, str(PROJECT / playbook)]
        for key, value in extra_vars.items():
            cmd += ["-e", f"{key}={value}" if isinstance(value, str) else json.dumps({key: value})]
        # Plain text to parse, whatever runs the tests (`molecule verify` asks for colour).
        env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1"}
        if on_line is None:
            return subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, check=False, env=env)
        lines = []
        with (
            tempfile.TemporaryFile("w+") as stderr,
            subprocess.Popen(
                cmd, cwd=PROJECT, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
            ) as process,
        ):
            for line in process.stdout:
                lines.append(line)
                on_line(line)
            process.wait()
            stderr.seek(0)
            return subprocess.CompletedProcess(cmd, process.returncode, "".join(lines), stderr.read())


def scenario() -> Lab:
    """The scenario under test (molecule's verifier sets these variables);
    test modules read their expected values from its inventory with it."""
    return Lab(
        inventory=os.environ["MOLECULE_INVENTORY_FILE"],
        ephemeral=Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]),
    )


@pytest.fixture(scope="session")
def lab() -> Lab:
    return scenario()


def q(value: str) -> str:
    return shlex.quote(value)


def changed(result, must_pass: bool = True) -> list[int]:
    """The changed= count of each host in an ansible-playbook run's recap (the
    run must have passed, unless must_pass is False: a refusal's recap)."""
    if must_pass:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    recap = result.stdout[result.stdout.rindex("PLAY RECAP") :]
    counts = [int(n) for n in re.findall(r"changed=(\d+)", recap)]
    assert counts, recap
    return counts


def changed_tasks(result) -> set[tuple[str, str]]:
    """(task, host) of every task or handler of an ansible-playbook run that
    reported a change, by inventory names: a drain task's "(drained ...)"
    suffix is left out, and so is the container a delegated host names when
    its ansible_host differs ("stk-ml2 -> stk-proxy(stk-proxy-ubuntu2404)")."""
    return {
        (block.split("]")[0].split(" (drained")[0], re.sub(r"\(.*\)$", "", host))
        for block in re.split(r"\n(?:TASK|RUNNING HANDLER) \[", result.stdout)[1:]
        for host in re.findall(r"^changed: \[([^\]]+)\]", block, re.M)
    }


ACCESS_LOG = "/var/log/nginx/mlflow.access.log"
ERROR_LOG = "/var/log/nginx/mlflow.error.log"


def ui_asset(page: str) -> str:
    """The path of the UI's main script, named in MLflow's page ("/") by a
    hash of its content."""
    return "/" + re.search(r"static-files/static/js/main\.[0-9a-f]+\.js", page).group(0)


def access_log(proxy, since: int = 0) -> list[str]:
    """The proxy's access log lines after the first `since` ones."""
    return proxy.check_output(f"tail -n +{since + 1} {ACCESS_LOG}").splitlines()


def access_log_length(proxy) -> int:
    return int(proxy.check_output(f"wc -l < {ACCESS_LOG}"))


# Runs on a client container with the MLflow client: logs one run.
LOG_RUN = r"""
import json, mlflow
mlflow.set_experiment("lab-verify")
with mlflow.start_run() as run:
    mlflow.log_params({"alpha": "0.5", "model": "ridge"})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_text("hello from the client", "notes/hello.txt")
print(json.dumps({"run_id": run.info.run_id, "experiment_id": run.info.experiment_id,
                  "artifact_uri": run.info.artifact_uri}))
"""

# Reads a run back: READ_RUN RUN_ID [ARTIFACT_PATH].
READ_RUN = r"""
import json, sys, tempfile, mlflow
client = mlflow.MlflowClient()
run = client.get_run(sys.argv[1])
artifact = (sys.argv[2:] or ["notes/hello.txt"])[0]
path = mlflow.artifacts.download_artifacts(run_id=sys.argv[1], artifact_path=artifact,
                                           dst_path=tempfile.mkdtemp())
print(json.dumps({"status": run.info.status, "params": run.data.params, "metrics": run.data.metrics,
                  "loss_history": len(client.get_metric_history(sys.argv[1], "loss")),
                  "artifact": open(path).read()}))
"""


def mlflow_python(client, url: str, code: str, *args: str) -> dict:
    """Run MLflow client code on the client container; its last line is JSON."""
    out = client.check_output(
        f"MLFLOW_TRACKING_URI={q(url)} MLFLOW_HTTP_REQUEST_MAX_RETRIES=3 "
        f"/opt/client/bin/python -c {q(code)} {' '.join(q(a) for a in args)}"
    )
    return json.loads(out.strip().splitlines()[-1])


def uvicorn_workers(host) -> int:
    """MLflow's uvicorn worker processes on `host` (either mode: the container
    runs as the service user's uid)."""
    return int(host.check_output("pgrep -u mlflow -fc spawn_main || true"))


# The stack's MLflow servers answer only a client certificate of its
# internal CA (mutual TLS), which the proxies hold: put AS_PROXY before a
# program that starts with TLS_CLIENT, run on a proxy host, and its HTTPS
# requests present the proxy's certificate (urllib's, and tls_context()'s).
# TLS_CLIENT=CA:CERTIFICATE:KEY in general, or CA alone: no certificate.
AS_PROXY = "TLS_CLIENT=" + ":".join(
    f"/etc/nginx/tls/{name}" for name in ("upstream-ca.crt", "upstream-client.crt", "upstream-client.key")
)
TLS_CLIENT = r"""
import os, ssl, urllib.request
def tls_context():
    if not os.environ.get("TLS_CLIENT"):
        return None
    ca, *certificate_and_key = os.environ["TLS_CLIENT"].split(":")
    context = ssl.create_default_context(cafile=ca)
    if certificate_and_key:
        context.load_cert_chain(*certificate_and_key)
    return context
urllib.request.install_opener(urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls_context())))
"""


def upstream(lab: Lab, server: str) -> str:
    """Where a stack server's MLflow answers the proxies (the stack's default
    port, mlflow_stack_mlflow_port): HTTPS, for AS_PROXY's certificate."""
    return f"https://{lab.ip(server)}:5000"


# Runs on a host: GETs over two kept-alive connections, in turn, the first
# five of each not counted; prints the median ms of each, "PLAIN QUICKACK".
# The second connection ACKs every segment at once (TCP_QUICKACK, set again
# before each answer is read: Linux clears it), so it never meets Nagle's
# stall; the first is what nginx's pooled connections see. Taken in turn,
# both pay the same load. KEPT_ALIVE ADDRESS PORT HOST_HEADER; HTTPS under
# AS_PROXY.
KEPT_ALIVE = (
    TLS_CLIENT
    + r"""
import http.client, socket, statistics, sys, time
context = tls_context()
def connect():
    if context:
        return http.client.HTTPSConnection(sys.argv[1], int(sys.argv[2]), timeout=30, context=context)
    return http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=30)
# MLflow's auth app wants credentials (AUTHORIZATION: the header's value).
headers = {"Host": sys.argv[3]}
if "AUTHORIZATION" in os.environ:
    headers["Authorization"] = os.environ["AUTHORIZATION"]
connections = {"plain": connect(), "quickack": connect()}
taken = {name: [] for name in connections}
for i in range(30):
    for name, conn in connections.items():
        began = time.perf_counter()
        conn.request("GET", "/api/2.0/mlflow/experiments/search?max_results=1", headers=headers)
        if name == "quickack":
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        taken[name].append(time.perf_counter() - began)
print(*(statistics.median(values[5:]) * 1000 for values in taken.values()))
"""
)


def kept_alive_stall_ms(client, address: str, port: int, host_header: str, env: str = "") -> float:
    """How much longer (median ms) a request on a reused connection to MLflow
    from `client` takes than one whose client ACKs at once, measured in turn
    (env: AS_PROXY for a stack server; AUTHORIZATION=... for MLflow's auth
    app). With Nagle's algorithm on in the server (uvicorn issue 3149) each
    such request waits for the client's delayed ACK: 40 ms or more on Linux;
    without it, about 0 however loaded the host."""
    program = f"python3 -c {q(KEPT_ALIVE)} {q(address)} {port} {q(host_header)}"
    plain, quickack = map(float, client.check_output(f"{env} {program}").split())
    print(f"kept-alive request: {plain:.1f} ms, {quickack:.1f} ms with quick ACKs")
    return plain - quickack


def curl(client, url: str, *options: str) -> str:
    """HTTP status of a request from the client container ("000": no answer)."""
    return client.run(f"curl -s -o /dev/null -w '%{{http_code}}' {' '.join(options)} {q(url)}").stdout


HEALTH = TLS_CLIENT + "import sys; urllib.request.urlopen(sys.argv[1] + '/health', timeout=5)"


def wait_healthy(host, url: str, timeout: int = 120, env: str = "") -> None:
    """Until MLflow at `url` answers /health to `host` (with the host's own
    python3: the lab's proxy has no curl; env: AS_PROXY for a stack server)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if host.run(f"{env} python3 -c {q(HEALTH)} {q(url)}").rc == 0:
            return
        time.sleep(2)
    raise AssertionError(f"{url}/health did not answer {host.backend.get_hostname()} within {timeout}s")


def install(host, *packages: str) -> None:
    """Debian packages on a lab host that lacks them (the outsiders' tools)."""
    host.check_output(
        f"dpkg -s {' '.join(packages)} >/dev/null 2>&1 || (apt-get update -qq"
        f" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {' '.join(packages)} >/dev/null)"
    )


def open_ports(lab: Lab, source: str, targets: list[str]) -> dict[str, list[int]]:
    """Every TCP port of each target host that answers a connection attempt
    from `source` (nmap's SYN scan of all 65535: seconds, where Python's
    connect() over the same ports took 40 s of CPU a host)."""
    ips = {lab.ip(t): t for t in targets}
    host = lab.host(source)
    install(host, "nmap")
    report = ElementTree.fromstring(host.check_output(f"nmap -Pn -n -sS -p- -T4 -oX - {' '.join(ips)}"))
    found: dict[str, list[int]] = {}
    for scanned in report.iter("host"):
        ip = scanned.find("address").get("addr")
        ports = scanned.iter("port")
        found[ips[ip]] = sorted(int(p.get("portid")) for p in ports if p.find("state").get("state") == "open")
    assert set(found) == set(ips.values()), f"nmap reported {sorted(found)} of {sorted(ips.values())}"
    return found


class FrontDoor:
    """Requests through a lab's proxy as an outside client makes them: curl on
    the `client` host (in no group), the lab's CA trusted, the public name
    resolved to the `proxy` host's address."""

    CA = "/usr/local/share/mlflow-lab-ca.crt"

    def __init__(self, lab: Lab, client: str, proxy: str):
        self.name = lab.var(proxy, "mlflow_stack_public_name")
        self.proxy_ip = lab.ip(proxy)
        self.client = lab.host(client)
        install(self.client, "curl", "openssl")
        ca = (lab.ephemeral / "tls" / f"{self.name}-ca.crt").read_text()
        self.client.check_output(f"printf %s {q(ca)} > {self.CA}")

    def request(
        self, method, path, *, user=None, password=None, body=None, scheme="https", name="", extra=()
    ):
        """HTTP status (and the answer's headers) of one request."""
        name = name or self.name
        port = 443 if scheme == "https" else 80
        options = [
            "-s",
            "-o /dev/null",
            "-D /tmp/headers",
            "-w '%{http_code}'",
            f"--cacert {self.CA}",
            f"--resolve {name}:{port}:{self.proxy_ip}",
            f"-X {method}",
            *extra,
        ]
        if user:
            options.append(f"-u {q(user + ':' + password)}")
        if body is not None:
            options += ["-H 'Content-Type: application/json'", f"--data-binary {q(body)}"]
        result = self.client.run(f"curl {' '.join(options)} {q(f'{scheme}://{name}{path}')}")
        return result.stdout, self.client.file("/tmp/headers").content_string if result.rc == 0 else ""

    def get(self, path: str, *, user: str, password: str) -> str:
        """The body of a GET with credentials (fails unless the answer is 2xx)."""
        return self.client.check_output(
            f"curl -sf --cacert {self.CA} --resolve {self.name}:443:{self.proxy_ip} "
            f"-u {q(user + ':' + password)} {q(f'https://{self.name}{path}')}"
        )

    @contextmanager
    def anonymous_requests(self, path: str):
        """Status codes of requests for `path` without credentials, sent twice
        a second while the block runs (401s without credentials never count
        toward a ban)."""
        loop = (
            "while [ ! -e /tmp/probe-stop ]; do "
            f"curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 5 --cacert {self.CA} "
            f"--resolve {self.name}:443:{self.proxy_ip} 'https://{self.name}{path}' >> /tmp/probe-codes; "
            "sleep 0.5; done"
        )
        start = f"rm -f /tmp/probe-codes /tmp/probe-stop; setsid sh -c {q(loop)} > /dev/null 2>&1 &"
        self.client.check_output(start)
        codes: list[str] = []
        try:
            yield codes
        finally:
            codes.extend(self.anonymous_codes())

    def anonymous_codes(self) -> list[str]:
        """Stops the loop of anonymous_requests (or one started the same way,
        as the default scenario's prepare.yml does) and returns its codes."""
        self.client.check_output("touch /tmp/probe-stop; sleep 1")
        return self.client.check_output("cat /tmp/probe-codes").split()


# Screenshots and timings of the UI tests (kept after the run).
ARTIFACTS = Path(os.environ.get("MLFLOW_TEST_ARTIFACTS", PROJECT / "test-artifacts"))


def page_state(driver, screenshot: Path, error: str) -> str:
    """What a browser shows and fetched, for a failure message; keeps a screenshot."""
    from selenium.common.exceptions import WebDriverException

    try:
        driver.save_screenshot(str(screenshot))
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource')"
            ".map(e => [e.name.split('?')[0].slice(-60), e.responseStatus, Math.round(e.duration)])"
        )
        body = driver.find_element("tag name", "body").text[:300]
    except WebDriverException as broken:  # the browser itself is gone
        return f"{error}; no page state ({(broken.msg or type(broken).__name__).splitlines()[0]})"
    failing = [entry for entry in fetched if not 200 <= (entry[1] or 0) < 400]
    slowest = sorted(fetched, key=lambda entry: -entry[2])[:5]
    return (
        f"{error}; {len(fetched)} requests, not 2xx/3xx: {failing[:10]}, slowest (ms): {slowest}; "
        f"screenshot {screenshot}; page: {body!r}"
    )


def see_run_in_the_ui(
    proxy_ip: str,
    name: str,
    user: str,
    password: str,
    experiment_id: str,
    run_id: str,
    label: str,
    loads: int = 1,
    proxy=None,
) -> dict:
    """Open the experiment's runs page as a person does, in headless chromium.

    Logs in once through the browser's HTTP authentication (what the password
    dialog fills: the browser then sends the credentials with every request
    of the page), opens https://NAME/#/experiments/ID/runs and waits until the
    run's link is on the page; `loads` times in all (the browser's reload).
    Keeps a screenshot and the first load's timing in
    ARTIFACTS/LABEL@DISTRO.{png,json}; returns the timing. On a failure,
    the end of the error log of `proxy` (the front door's host) is told too.
    """
    from urllib.parse import quote

    label = f"{label}@{os.environ.get('MOLECULE_DISTRO', 'debian12')}"

    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def listed(driver) -> list:
        return driver.find_elements(By.CSS_SELECTOR, f'a[href*="{run_id}"]')

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root in CI
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
        # The lab's name is in no DNS; its certificate is checked by the
        # verification (mlflow_verify), not by this test.
        f"--host-resolver-rules=MAP {name} {proxy_ip}",
    ):
        options.add_argument(argument)
    options.accept_insecure_certs = True
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    phase, start = "log-in", time.monotonic()
    try:
        driver.set_page_load_timeout(90)
        # The log-in: credentials answer the 401 once, then sit in the
        # browser's authentication cache for the whole site.
        driver.get(f"https://{quote(user, safe='')}:{quote(password, safe='')}@{name}/version")
        assert driver.find_element(By.TAG_NAME, "body").text.strip(), "the log-in page stayed empty"
        phase, start = "runs page", time.monotonic()
        driver.get(f"https://{name}/#/experiments/{experiment_id}/runs")
        phase = f"run {run_id} listed"
        WebDriverWait(driver, 90).until(listed)
        timing = {
            "seconds_to_run_listed": round(time.monotonic() - start, 2),
            "requests": driver.execute_script("return performance.getEntriesByType('resource').length"),
            "title": driver.title,
        }
        for load in range(2, loads + 1):
            phase, start = f"reload {load} of {loads}", time.monotonic()
            driver.refresh()
            WebDriverWait(driver, 90).until(listed)
        driver.save_screenshot(str(ARTIFACTS / f"{label}.png"))
        (ARTIFACTS / f"{label}.json").write_text(json.dumps(timing, indent=2) + "\n")
        print(f"UI {label}: {timing}")
        return timing
    except WebDriverException as error:
        # Whatever the browser stopped on, say where, after how long, and what
        # the page showed and fetched (a person's report, not a stack trace).
        reason = (error.msg or type(error).__name__).splitlines()[0]
        proxy_log = proxy.run(f"tail -n 20 {ERROR_LOG}").stdout if proxy else ""
        raise AssertionError(
            f"{label}: {phase} failed after {time.monotonic() - start:.1f} s: "
            + page_state(driver, ARTIFACTS / f"{label}-failed.png", reason)
            + (f"; the proxy's error log ends: {proxy_log}" if proxy_log else "")
        ) from None
    finally:
        driver.quit()
