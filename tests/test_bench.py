"""The benchmarks' parts against a real local `mlflow server` (the tutorial
server the benchmark compares with): the load sends what it says and counts
it, a transfer comes back intact, the ceiling measures, and the report and
the plot are written. Speeds are printed by bench/front_door.py, never
asserted here."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

BENCH = Path(__file__).resolve().parent.parent / "bench"
spec = importlib.util.spec_from_file_location("front_door", BENCH / "front_door.py")
front_door = importlib.util.module_from_spec(spec)
spec.loader.exec_module(front_door)


def bench(script: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tutorial():
    with front_door.mlflow_server() as url:
        yield url


def test_load_sends_a_training_jobs_requests_and_counts_them(tutorial):
    # A fixed amount of work, not a time window: the same counts on any machine.
    figures = bench("load.py", "--url", tutorial, "--clients", "2", "--runs", "3")
    assert figures["errors"] == 0, figures["error_samples"]
    assert figures["runs"] == 2 * 3
    assert figures["requests"] == 9 * 2 * 3
    assert figures["runs_per_s"] == pytest.approx(figures["runs"] / figures["seconds"])
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]

    # The server holds what was counted: finished runs with their batch and epochs.
    experiment = requests.post(
        f"{tutorial}/api/2.0/mlflow/experiments/search", json={"max_results": 10}, timeout=30
    ).json()["experiments"]
    bench_ids = [e["experiment_id"] for e in experiment if e["name"].startswith("bench-")]
    runs = requests.post(
        f"{tutorial}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": bench_ids, "filter": "attributes.status = 'FINISHED'", "max_results": 1000},
        timeout=30,
    ).json()["runs"]
    assert len(runs) == figures["runs"]
    data = runs[0]["data"]
    assert len(data["params"]) == 10
    assert len(data["tags"]) >= 3
    history = requests.get(
        f"{tutorial}/api/2.0/mlflow/metrics/get-history",
        params={"run_id": runs[0]["info"]["run_id"], "metric_key": "loss"},
        timeout=30,
    ).json()["metrics"]
    assert [m["step"] for m in history] == [0, 1, 2, 3, 4]


def test_load_stops_with_the_reason_when_the_server_refuses(tutorial):
    # A Host header the server refuses (its security middleware): no figures, the reason shown.
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "load.py"),
            "--url",
            tutorial,
            "--host",
            "evil.example",
            "--seconds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "HTTP 403" in done.stderr


def test_transfer_comes_back_intact_and_is_removed(tutorial):
    figures = bench("transfer.py", "--url", tutorial, "--size-mib", "8")
    assert figures["intact"] is True
    assert figures["upload_mib_s"] > 0
    assert figures["download_mib_s"] > 0
    listed = requests.get(
        f"{tutorial}/api/2.0/mlflow-artifacts/artifacts", params={"path": "bench"}, timeout=30
    ).json()
    assert listed.get("files", []) == []


def test_ceiling_report_and_plot(tutorial, tmp_path):
    ceiling = bench("ceiling.py", "--seconds", "1")
    assert ceiling["store"] == "sqlite"
    assert ceiling["runs_per_s"] > 0
    level = bench("load.py", "--url", tutorial, "--clients", "1", "--runs", "1")
    results = {
        "tracking": {
            "seconds": 1,
            "levels": {target: {1: level} for target in ("tutorial", "front door", "direct")},
            "ceiling": {"sqlite": ceiling},
        },
        "internal_tls": {
            "clients": 1,
            "seconds": 1,
            **{label: level for label in ("tutorial", "on", "off", "on again")},
            "off/on": 1.0,
            "on spread": 0.0,
        },
    }
    text = front_door.report(results, tmp_path)
    assert "| front door | 1 |" in text
    assert "| 1.00 |" in text
    assert "| off | " in text
    assert "Off/on (mean of both on runs): 1.00; the two on runs differ by 0 %" in text
    assert json.loads((tmp_path / "results.json").read_text())["tracking"]["ceiling"]["sqlite"] == ceiling
    png = front_door.plot(results, tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
