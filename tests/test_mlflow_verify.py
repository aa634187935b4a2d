"""The verification script (files/mlflow_verify.py) against a real local MLflow server."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import PROJECT
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SCRIPT = PROJECT / "files/mlflow_verify.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(root: Path, scheme: str = "http", *extra: str):
    """`mlflow server` with a SQLite store and proxied local artifacts, on a free port."""
    port = free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
            "--artifacts-destination", str(root / "artifacts"), "--workers", "1", *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )  # fmt: skip
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=2, verify=False).status_code == 200:
                return process, url
        except requests.RequestException:
            pass
        assert process.poll() is None, (root / "server.log").read_text()[-3000:]
        time.sleep(1)
    process.kill()
    raise AssertionError("the local MLflow server did not start within 120 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    process, url = start_server(root)
    yield {"url": url, "root": root}
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def open_tls_server(tmp_path_factory):
    """An MLflow server behind TLS (uvicorn's own) that checks no credentials at all."""
    root = tmp_path_factory.mktemp("mlflow-tls-server")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (root / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (root / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    opts = f"--ssl-keyfile {root / 'key.pem'} --ssl-certfile {root / 'cert.pem'}"
    process, url = start_server(root, "https", "--uvicorn-opts", opts)
    yield {"url": url, "ca": str(root / "cert.pem")}
    process.terminate()
    process.wait(timeout=30)


def verify(tmp_path: Path, *args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--report", str(report), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=600,
    )
    return result, (json.loads(report.read_text()) if report.exists() else {})


def test_every_check_passes_against_a_working_server(server, tmp_path):
    result, report = verify(tmp_path, "--tracking-uri", server["url"])
    assert result.returncode == 0, result.stdout + result.stderr
    names = [c["name"] for c in report["checks"]]
    assert names == [
        "server answers",
        "train and log run",
        "params and metrics stored",
        "artifacts intact",
        "model registered",
        "model loads and predicts",
        "search finds the run",
    ]
    assert all(c["ok"] for c in report["checks"])
    assert report["ok"] is True
    assert "all checks passed" in result.stdout
    # The artifacts really are in the server's store, under the run.
    run_dir = server["root"] / "artifacts" / report["experiment_id"] / report["run_id"] / "artifacts"
    assert sorted(p.name for p in (run_dir / "evaluation").iterdir()) == [
        "confusion_matrix.png",
        "feature_importance.csv",
        "roc_curve.png",
    ]
    assert (run_dir / "evaluation" / "roc_curve.png").read_bytes().startswith(b"\x89PNG")
    assert report["model_version"] == "1"


def test_second_run_registers_a_new_version_from_environment_settings(server, tmp_path):
    env = {"MLFLOW_TRACKING_URI": server["url"], "PATH": "/usr/bin:/bin"}
    result, report = verify(tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(report["model_version"]) >= 2
    model = requests.get(
        f"{server['url']}/api/2.0/mlflow/registered-models/alias",
        params={"name": "mlflow-vm-verification", "alias": "verified"},
        timeout=10,
    ).json()["model_version"]
    assert model["version"] == report["model_version"]
    assert model["run_id"] == report["run_id"]


def test_credentials_check_fails_on_an_open_server(open_tls_server, tmp_path):
    """A server behind verified TLS that answers without credentials fails the credentials check by name."""
    result, report = verify(
        tmp_path,
        "--tracking-uri", open_tls_server["url"], "--ca-cert", open_tls_server["ca"],
        "--username", "alice", "--password", "secret",
    )  # fmt: skip
    assert result.returncode == 1
    checks = {c["name"]: c["ok"] for c in report["checks"]}
    assert checks["server answers"] is True
    assert checks["TLS verified"] is True
    assert report["failed"] == ["credentials required"]
    assert "expected 401 without credentials and with a wrong password, got 200, 200" in result.stdout


def test_plain_http_with_credentials_fails_the_tls_check(server, tmp_path):
    result, report = verify(
        tmp_path, "--tracking-uri", server["url"], "--username", "alice", "--password", "secret", "--insecure"
    )
    assert result.returncode == 1
    assert report["failed"] == ["TLS verified"]
    result, report = verify(
        tmp_path, "--tracking-uri", server["url"].replace("http:", "https:"), "--insecure"
    )
    assert result.returncode == 1
    assert report["failed"] == ["server answers"]


def test_unreachable_server_fails_first_step_and_skips_the_rest(tmp_path):
    result, report = verify(tmp_path, "--tracking-uri", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert report["failed"] == ["server answers"]
    assert [c["ok"] for c in report["checks"][1:]] == [None] * (len(report["checks"]) - 1)
    assert "FAILED at: server answers" in result.stdout
    assert "SKIP" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no server: give --tracking-uri or set MLFLOW_TRACKING_URI"),
        (["--tracking-uri", "ftp://x"], "expected http:// or https://"),
        (["--tracking-uri", "https://x", "--username", "alice"], "--username and --password go together"),
        (["--tracking-uri", "https://x", "--ca-cert", "/nonexistent.pem"], "/nonexistent.pem: no such file"),
    ],
)
def test_bad_flags_are_refused(tmp_path, args, message):
    result, report = verify(tmp_path, *args, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert message in result.stderr
    assert report == {}
