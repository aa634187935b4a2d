"""A client that keeps logging through the front door while something
happens (a roll, a migration), counting every answer."""

from __future__ import annotations

import collections
import threading
import time

import requests

from labtest.lab import Lab


class Traffic:
    """A client that keeps logging a metric through the front door until the
    block ends, one new connection per request (no kept-alive connection to
    be closed under it), and keeps every answer: (time, status or error,
    Retry-After). No retries: every failed request counts. Paced (INTERVAL):
    a window of failures shows as well, and the run it watches is not slowed
    by the client (unpaced, it took a third of both cores)."""

    INTERVAL = 0.2

    def __init__(self, lab: Lab):
        self.url = f"https://{lab.ip('stk-proxy')}/api/2.0/mlflow"
        self.host = lab.var("stk-proxy", "mlflow_stack_public_name")
        self.auth = ("admin", lab.secret("admin_password"))
        experiment = self.post("/experiments/create", {"name": f"traffic-{time.time_ns()}"}).json()
        self.run_id = self.post("/runs/create", {"experiment_id": experiment["experiment_id"]}).json()["run"][
            "info"
        ]["run_id"]
        self.answers: list[tuple[float, object, str | None]] = []
        # Answers without the proxy's security headers (a location's own
        # add_header would drop them).
        self.without_nosniff = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def post(self, path: str, body: dict) -> requests.Response:
        return requests.post(
            self.url + path, json=body, headers={"Host": self.host}, auth=self.auth, verify=False, timeout=60
        )

    def get(self, path: str) -> requests.Response:
        """A GET of any path of the site (not only the API's)."""
        url = self.url.split("/api/")[0] + path
        return requests.get(url, headers={"Host": self.host}, auth=self.auth, verify=False, timeout=60)

    def _loop(self) -> None:
        step, due = 0, time.monotonic()
        while not self._stop.is_set():
            began = time.monotonic()
            body = {"run_id": self.run_id, "key": "loss", "value": 1.0, "timestamp": 0, "step": step}
            try:
                response = self.post("/runs/log-metric", body)
                self.answers.append((began, response.status_code, response.headers.get("Retry-After")))
                # MLflow sets it too: requests joins both ("nosniff, nosniff").
                self.without_nosniff += "nosniff" not in response.headers.get("X-Content-Type-Options", "")
            except Exception as error:
                self.answers.append((began, type(error).__name__, None))
            step += 1
            due = max(due + self.INTERVAL, time.monotonic())
            self._stop.wait(due - time.monotonic())

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def __enter__(self) -> Traffic:
        self.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            time.sleep(2)
            self._stop.set()
            self._thread.join(timeout=120)

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def statuses(self) -> collections.Counter:
        return collections.Counter(status for _, status, _ in self.answers)

    def failed(self) -> list[tuple[float, object, str | None]]:
        return [answer for answer in self.answers if answer[1] != 200]

    def summary(self) -> str:
        failed = self.failed()
        window = failed[-1][0] - failed[0][0] if failed else 0.0
        return f"sent {len(self.answers)}, statuses {dict(self.statuses)}, non-200 window {window:.1f} s"
