"""Tracking load against one MLflow URL: CLIENTS threads, each on its own
kept-alive connection, repeating what a training job sends, for SECONDS
(or until each client has sent RUNS runs: a fixed amount of work, whatever
the machine's speed).

Standard library only, so the same file runs on the controller and on any lab
host (`python3 - ARGS < bench/load.py`), e.g. on the proxy host, the only one
allowed to reach the MLflow servers directly. Prints one JSON object.

One iteration of a client (9 requests), as a training loop sends them:
  runs/create, runs/log-batch (10 metrics, 10 params, 3 tags),
  5 x runs/log-metric (one per epoch), runs/search (the experiment's
  10 newest runs), runs/update (FINISHED).

Each client takes its server from --url round robin (comma-separated: the
servers behind a proxy hit directly). The password comes on stdin
(--password-stdin), never on the command line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
import urllib.parse

from benchlib import add_target_args, basic_auth, connect

API = "/api/2.0/mlflow"


class TimeUp(Exception):
    """The measured window is over: the client stops between two requests."""


class Client:
    """One kept-alive connection; reopened after an error."""

    def __init__(self, url: str, host: str | None, auth: str | None):
        parts = urllib.parse.urlsplit(url)
        self.url = url
        self.headers = {"Content-Type": "application/json", "Host": host or parts.netloc}
        if auth:
            self.headers["Authorization"] = auth
        self.conn = None

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        if self.conn is None:
            self.conn = connect(self.url, timeout=120)
        try:
            self.conn.request(
                method, API + path, body=json.dumps(body) if body else None, headers=self.headers
            )
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {response.status} {data[:200]!r}")
        return json.loads(data) if data else {}


def iteration(client: Client, experiment: str, timed) -> None:
    now = int(time.time() * 1000)
    run = timed(client.call, "POST", "/runs/create", {"experiment_id": experiment, "start_time": now})
    run_id = run["run"]["info"]["run_id"]
    timed(
        client.call,
        "POST",
        "/runs/log-batch",
        {
            "run_id": run_id,
            "metrics": [{"key": f"m{i}", "value": i * 0.5, "timestamp": now, "step": 0} for i in range(10)],
            "params": [{"key": f"p{i}", "value": str(i)} for i in range(10)],
            "tags": [{"key": f"t{i}", "value": "x"} for i in range(3)],
        },
    )
    for epoch in range(5):
        timed(
            client.call,
            "POST",
            "/runs/log-metric",
            {"run_id": run_id, "key": "loss", "value": 1.0 / (epoch + 1), "timestamp": now, "step": epoch},
        )
    timed(client.call, "POST", "/runs/search", {"experiment_ids": [experiment], "max_results": 10})
    timed(
        client.call,
        "POST",
        "/runs/update",
        {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_target_args(parser, "one URL, or several comma-separated (round robin)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load not counted")
    parser.add_argument(
        "--runs", type=int, help="each client stops after this many runs (fixed work, no time limit)"
    )
    args = parser.parse_args()
    if args.runs is not None:
        args.warmup, args.seconds = 0.0, float("inf")

    auth = basic_auth(args)
    urls = args.url.split(",")
    setup = Client(urls[0], args.host, auth)
    experiment = setup.call("POST", "/experiments/create", {"name": f"bench-{time.time_ns()}"})[
        "experiment_id"
    ]

    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"runs": 0, "errors": 0}
    errors: list[str] = []
    start = time.monotonic()
    counting = start + args.warmup
    deadline = counting + args.seconds

    def client_loop(index: int) -> None:
        client = Client(urls[index % len(urls)], args.host, auth)
        mine: list[float] = []

        def timed(call, *call_args):
            began = time.monotonic()
            if began >= deadline:
                raise TimeUp
            result = call(*call_args)
            ended = time.monotonic()
            if began >= counting and ended <= deadline:
                mine.append(ended - began)
            return result

        done = 0
        while time.monotonic() < deadline and (args.runs is None or done < args.runs):
            done += 1
            began = time.monotonic()
            try:
                iteration(client, experiment, timed)
            except TimeUp:
                break
            except (OSError, http.client.HTTPException, RuntimeError, KeyError, ValueError) as error:
                with lock:
                    if began >= counting:
                        counts["errors"] += 1
                    if len(errors) < 5:
                        errors.append(str(error)[:300])
                continue
            if began >= counting and time.monotonic() <= deadline:
                with lock:
                    counts["runs"] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=None if args.runs is not None else args.warmup + args.seconds + 300)
    # The measured window: the fixed seconds, or how long the fixed work took.
    seconds = args.seconds if args.runs is None else time.monotonic() - counting
    latencies.sort()

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    print(
        json.dumps(
            {
                "clients": args.clients,
                "seconds": seconds,
                "runs": counts["runs"],
                "requests": len(latencies),
                "runs_per_s": counts["runs"] / seconds,
                "requests_per_s": len(latencies) / seconds,
                "p50_ms": quantile(0.50) * 1000,
                "p95_ms": quantile(0.95) * 1000,
                "p99_ms": quantile(0.99) * 1000,
                "errors": counts["errors"],
                "error_samples": errors,
            }
        )
    )


if __name__ == "__main__":
    main()
