"""Programs and probes run on a lab host (a testinfra host)."""

from __future__ import annotations

import time
from pathlib import Path

from labtest.lab import Lab, q

PROGRAMS = Path(__file__).resolve().parent / "programs"
TLS_IMPORT = "from tls_client import tls_context"


def program(name: str) -> str:
    """The text of programs/NAME.py to run on a host (`python3 -c`), its
    `from tls_client import tls_context` line replaced by programs/tls_client.py
    (the hosts have no copy of this package)."""
    lines = (PROGRAMS / f"{name}.py").read_text().splitlines(keepends=True)
    tls_client = (PROGRAMS / "tls_client.py").read_text()
    return "".join(tls_client if line.startswith(TLS_IMPORT) else line for line in lines)


# The stack's MLflow servers answer only a client certificate of its
# internal CA (mutual TLS), which the proxies hold: put AS_PROXY before a
# program of programs/ that imports tls_client, run on a proxy host, and its HTTPS requests
# present the proxy's certificate (urllib's, and tls_context()'s).
# TLS_CLIENT=CA:CERTIFICATE:KEY in general, or CA alone: no certificate.
AS_PROXY = "TLS_CLIENT=" + ":".join(
    f"/etc/nginx/tls/{name}" for name in ("upstream-ca.crt", "upstream-client.crt", "upstream-client.key")
)


def upstream(lab: Lab, server: str) -> str:
    """Where a stack server's MLflow answers the proxies (the stack's default
    port, mlflow_stack_mlflow_port): HTTPS, for AS_PROXY's certificate."""
    return f"https://{lab.ip(server)}:5000"


def uvicorn_workers(host) -> int:
    """MLflow's uvicorn worker processes on `host` (either mode: the container
    runs as the service user's uid)."""
    return int(host.check_output("pgrep -u mlflow -fc spawn_main || true"))


def kept_alive_stall_ms(client, address: str, port: int, host_header: str, env: str = "") -> float:
    """How much longer (median ms) a request on a reused connection to MLflow
    from `client` takes than one whose client ACKs at once, measured in turn
    (programs/kept_alive.py; env: AS_PROXY for a stack server;
    AUTHORIZATION=... for MLflow's auth app). With Nagle's algorithm on in the
    server (uvicorn issue 3149) each such request waits for the client's
    delayed ACK: 40 ms or more on Linux; without it, about 0 however loaded
    the host."""
    command = f"python3 -c {q(program('kept_alive'))} {q(address)} {port} {q(host_header)}"
    plain, quickack = map(float, client.check_output(f"{env} {command}").split())
    print(f"kept-alive request: {plain:.1f} ms, {quickack:.1f} ms with quick ACKs")
    return plain - quickack


def wait_healthy(host, url: str, timeout: int = 120, env: str = "") -> None:
    """Until MLflow at `url` answers /health with 200 to `host`
    (programs/health_status.py with the host's own python3: the lab's proxy
    has no curl; env: AS_PROXY for a stack server)."""
    deadline = time.time() + timeout
    health = q(program("health_status"))
    while time.time() < deadline:
        if host.run(f"{env} python3 -c {health} {q(url)}").stdout.strip() == "200":
            return
        time.sleep(2)
    raise AssertionError(f"{url}/health did not answer {host.backend.get_hostname()} within {timeout}s")


def install(host, *packages: str) -> None:
    """Debian packages on a lab host that lacks them (the outsiders' tools)."""
    host.check_output(
        f"dpkg -s {' '.join(packages)} >/dev/null 2>&1 || (apt-get update -qq"
        f" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {' '.join(packages)} >/dev/null)"
    )
