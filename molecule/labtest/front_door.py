"""Requests through a lab's proxy as an outside client makes them, and the
proxy's own logs."""

from __future__ import annotations

import re
from contextlib import contextmanager

from labtest.hosts import install
from labtest.lab import Lab, q

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
