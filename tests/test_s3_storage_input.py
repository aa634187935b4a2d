"""Bad input to role s3_storage stops the run before any change, naming the variable."""

from __future__ import annotations

import pytest

GOOD = {
    "s3_storage_access_key": "MLFLOWACCESSKEY",
    "s3_storage_secret_key": "a-secret-key-long-enough",
    "s3_storage_seaweedfs_listen_address": "10.0.0.5",
}


@pytest.mark.parametrize("mode", ["seaweedfs", "external"])
def test_good_input_passes(validate_role, mode):
    result = validate_role("s3_storage", {**GOOD, "s3_storage_mode": mode})
    assert result.returncode == 0, result.stdout + result.stderr


BAD = [
    ({"s3_storage_mode": "minio"}, "s3_storage_mode must be one of: seaweedfs, external"),
    ({"s3_storage_bucket": "My_Bucket"}, "s3_storage_bucket=My_Bucket breaks the S3 bucket naming rules"),
    ({"s3_storage_bucket": "ab"}, "s3_storage_bucket=ab breaks the S3 bucket naming rules"),
    ({"s3_storage_bucket": "a..b"}, "s3_storage_bucket=a..b breaks the S3 bucket naming rules"),
    (
        {"s3_storage_bucket": "192.168.1.1"},
        "s3_storage_bucket=192.168.1.1 breaks the S3 bucket naming rules",
    ),
    ({"s3_storage_bucket": "-mlflow"}, "s3_storage_bucket=-mlflow breaks the S3 bucket naming rules"),
    ({"s3_storage_access_key": None}, "missing required arguments: s3_storage_access_key"),
    ({"s3_storage_secret_key": None}, "missing required arguments: s3_storage_secret_key"),
    ({"s3_storage_access_key": ""}, "s3_storage_access_key is empty"),
    ({"s3_storage_secret_key": "short"}, "s3_storage_secret_key is empty or shorter than 16 characters"),
    (
        {"s3_storage_endpoint_url": "s3.example.com"},
        "s3_storage_endpoint_url=s3.example.com is not http(s)",
    ),
    (
        {"s3_storage_endpoint_url": "ftp://s3.example.com"},
        "s3_storage_endpoint_url=ftp://s3.example.com is not",
    ),
    ({"s3_storage_endpoint_url": "https://s3.example.com/bucket"}, "is not http(s)://host[:port]"),
    (
        {"s3_storage_seaweedfs_listen_address": "everywhere"},
        "s3_storage_seaweedfs_listen_address=everywhere",
    ),
    ({"s3_storage_seaweedfs_port": 0}, "s3_storage_seaweedfs_port=0 is not a TCP port"),
    ({"s3_storage_seaweedfs_version": "latest"}, "s3_storage_seaweedfs_version=latest is not a version"),
    (
        {"s3_storage_ca_bundle": "/nonexistent/ca.pem"},
        "s3_storage_ca_bundle=/nonexistent/ca.pem is not a file",
    ),
]


@pytest.fixture(scope="module")
def refused(refusals):
    """Every input of BAD in one run of the role (tests/conftest.py: refusals)."""
    return refusals("s3_storage", [{**GOOD, **case[0]} for case in BAD])


@pytest.mark.parametrize(
    ("changes", "message"), BAD, ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None
)
def test_bad_input_fails_before_any_change(refused, changes, message):
    refused({**GOOD, **changes}, message)


def test_secret_key_does_not_leak(hides):
    hides("s3_storage", {**GOOD, "s3_storage_secret_key": "Zq9xQwShort"}, "Zq9xQw")
