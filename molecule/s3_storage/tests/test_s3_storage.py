"""Behaviour of the s3_storage role (scenario molecule/s3_storage)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from labtest.hosts import program
from labtest.lab import q, scenario

LAB = scenario()
PORT = int(LAB.var("s3-store", "mlflow_stack_s3_port"))
BUCKET = LAB.var("s3-store", "mlflow_stack_s3_bucket")

S3_CALL = program("s3_call")


@pytest.fixture(scope="module")
def store(lab):
    return lab.host("s3-store")


@pytest.fixture(scope="module")
def client(lab):
    return lab.host("s3-client")


@pytest.fixture(scope="module")
def store_ip(lab):
    return lab.ip("s3-store")


@pytest.fixture(scope="module")
def creds(lab, store_ip):
    return {
        "endpoint": f"http://{store_ip}:{PORT}",
        "key": lab.secret("s3_access_key"),
        "secret": lab.secret("s3_secret_key"),
        "bucket": BUCKET,
    }


@pytest.fixture(scope="module")
def s3(client, creds):
    def call(op, k, **kwargs):
        args = json.dumps({**creds, "op": op, "k": k, **kwargs})
        return json.loads(client.check_output(f"python3 -c {q(S3_CALL)} {q(args)}"))

    return call


def wait_ready(s3):
    """Until the S3 API serves requests again (SeaweedFS needs ~20 s to start)."""
    for _ in range(90):
        result = s3("list", "durable/")
        if result["ok"]:
            return
        time.sleep(1)
    raise AssertionError(f"S3 API did not come back: {result}")


def test_service_active_enabled_and_unprivileged(store):
    service = store.service("seaweedfs")
    assert service.is_running
    assert service.is_enabled
    assert store.check_output("ps -o user= -C weed").split() == ["seaweedfs"]


def test_s3_listens_where_configured_internals_on_loopback(store, store_ip):
    sockets = {s for s in store.socket.get_listening_sockets() if s.startswith("tcp://")}
    assert f"tcp://{store_ip}:{PORT}" in sockets
    for internal in (9333, 8080, 8888):  # master, volume, filer
        listeners = {s for s in sockets if s.endswith(f":{internal}")}
        assert listeners == {f"tcp://127.0.0.1:{internal}"}, listeners


def test_master_uses_the_configured_volume_size_limit(lab, store):
    limit = lab.var("s3-store", "s3_storage_seaweedfs_volume_size_limit_mb")
    weed = store.check_output("ps -o args= -C weed").split()[0]  # as systemd started it: a full path
    topology = store.check_output(f"echo volume.list | {weed} shell -master=127.0.0.1:9333")
    assert f"volumeSizeLimit:{limit} MB" in topology, topology[:300]


def test_data_on_configured_folder(store):
    folder = store.file("/srv/objects")
    assert folder.is_directory
    assert folder.user == "seaweedfs"
    assert folder.mode == 0o750
    assert store.file("/etc/seaweedfs/s3.json").mode == 0o640


def test_put_get_list_delete(s3):
    assert s3("put", "runs/1/artifacts/a.txt", body="alpha")["ok"]
    assert s3("get", "runs/1/artifacts/a.txt")["result"] == "alpha"
    assert s3("list", "runs/1/")["result"] == ["runs/1/artifacts/a.txt"]
    assert s3("delete", "runs/1/artifacts/a.txt")["ok"]
    assert s3("list", "runs/1/")["result"] == []


@pytest.mark.parametrize("which", ["secret", "key"])
def test_wrong_keys_get_403(s3, creds, which):
    wrong = {which: creds[which][:-1] + ("A" if creds[which][-1] != "A" else "B")}
    result = s3("get", "anything", **wrong)
    assert not result["ok"]
    assert result["status"] == 403, result


def test_data_survives_service_restart(s3, store, store_ip):
    assert s3("put", "durable/service.txt", body="kept")["ok"]
    store.check_output("systemctl restart seaweedfs")
    wait_ready(s3)
    result = s3("get", "durable/service.txt")
    assert result.get("result") == "kept", result


def test_data_survives_host_restart(lab, s3, store, store_ip):
    assert s3("put", "durable/host.txt", body="kept too")["ok"]
    subprocess.run(["docker", "restart", lab.container("s3-store")], check=True, capture_output=True)
    wait_ready(s3)
    assert store.service("seaweedfs").is_enabled
    assert s3("get", "durable/host.txt")["result"] == "kept too"
    assert s3("get", "durable/service.txt")["result"] == "kept"


def test_256_mib_object_roundtrip(s3, client):
    path = "/var/tmp/big.bin"
    client.check_output(f"head -c 256M /dev/urandom > {path}")
    try:
        assert s3("roundtrip", "big/object.bin", path=path)["ok"]
        sums = client.check_output(f"sha256sum {path} {path}.back | cut -d' ' -f1").split()
        assert len(sums) == 2
        assert sums[0] == sums[1]
    finally:
        client.run(f"rm -f {path} {path}.back")
        s3("delete", "big/object.bin")


def external(lab, creds, **overrides):
    variables = {
        "s3_storage_endpoint_url": creds["endpoint"],
        "s3_storage_bucket": creds["bucket"],
        "s3_storage_access_key": creds["key"],
        "s3_storage_secret_key": creds["secret"],
        **overrides,
    }
    result = lab.playbook("molecule/s3_storage/external.yml", **variables)
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def test_external_mode_probe_passes(lab, creds, s3):
    rc, out = external(lab, creds)
    assert rc == 0, out
    assert "changed=0" in out
    assert s3("list", ".mlflow-vm-probe/")["result"] == [], "the probe object must be deleted"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"s3_storage_bucket": "no-such-bucket"},
            "S3 check failed (missing bucket): bucket no-such-bucket does not exist",
        ),
        (
            {"s3_storage_secret_key": "wrong-secret-key-0123456789"},
            "S3 check failed (403 credentials refused)",
        ),
        ({"s3_storage_endpoint_url": "http://no-such-host.invalid:9000"}, "S3 check failed (DNS)"),
        ({"s3_storage_endpoint_url": "http://127.0.0.1:1"}, "S3 check failed (connection)"),
        ({"s3_storage_endpoint_url": "ENDPOINT_AS_HTTPS"}, "S3 check failed (TLS)"),
    ],
    ids=["bucket", "keys", "dns", "connection", "tls"],
)
def test_external_mode_names_what_is_wrong(lab, creds, overrides, message):
    if overrides.get("s3_storage_endpoint_url") == "ENDPOINT_AS_HTTPS":
        overrides = {"s3_storage_endpoint_url": creds["endpoint"].replace("http://", "https://")}
    rc, out = external(lab, creds, **overrides)
    assert rc != 0
    assert message in out, out
    assert creds["secret"] not in out
