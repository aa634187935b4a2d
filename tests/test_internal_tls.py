"""Role internal_tls on the controller: a run issues the certificates, the next
finds them current and skips the signing tasks (the lookup plugin
internal_tls_stale decides), and each change that must reissue one is seen."""

from __future__ import annotations

import datetime
import importlib.util
import shutil
import subprocess

import pytest
from conftest import PROJECT, run_role
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_SPEC = importlib.util.spec_from_file_location(
    "internal_tls_stale", PROJECT / "roles/internal_tls/lookup_plugins/internal_tls_stale.py"
)
STALE = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(STALE)

CERTIFICATES = [
    {
        "name": "server",
        "names": ["DNS:mlflow-server", "IP:10.0.0.5", "IP:::1"],
        "usages": ["serverAuth", "clientAuth"],
    },
    {"name": "client", "usages": ["clientAuth"]},
]
SIGN = "internal_tls : Sign this host's certificates with the CA"


def issue(folder, ansible_env) -> subprocess.CompletedProcess:
    result = run_role(
        folder.parent,
        ansible_env,
        "internal_tls",
        {"internal_tls_dir": str(folder), "internal_tls_certificates": CERTIFICATES},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def issued(tmp_path_factory, ansible_env):
    """The folder of a first run, and that run."""
    folder = tmp_path_factory.mktemp("tls") / "internal"
    return folder, issue(folder, ansible_env)


def stale(folder, certificates=CERTIFICATES, ca=None, **options) -> list[str]:
    return STALE.stale(
        certificates, str(folder / "localhost"), str(ca or folder / "ca.crt"), "localhost", 30, **options
    )


def test_a_run_issues_the_certificates_and_the_next_skips_signing(issued, ansible_env):
    folder, first = issued
    assert SIGN in first.stdout
    assert sorted(path.name for path in (folder / "localhost").iterdir()) == [
        "client.crt",
        "client.key",
        "server.crt",
        "server.key",
    ]
    again = issue(folder, ansible_env)
    assert SIGN not in again.stdout, again.stdout[-3000:]
    assert "changed=0" in again.stdout


def test_current_certificates_are_not_stale(issued):
    assert stale(issued[0]) == []


@pytest.mark.parametrize(
    "change",
    [
        {"names": ["DNS:mlflow-server", "IP:10.0.0.5"]},
        {"names": ["DNS:mlflow-server", "IP:10.0.0.5", "IP:::1", "DNS:other"]},
        {"usages": ["serverAuth"]},
    ],
)
def test_other_names_or_uses_make_a_certificate_stale(issued, change):
    assert stale(issued[0], [{**CERTIFICATES[0], **change}, CERTIFICATES[1]]) == ["server"]


def test_a_certificate_within_the_renewal_window_is_stale(issued):
    expires = x509.load_pem_x509_certificate(
        (issued[0] / "localhost/client.crt").read_bytes()
    ).not_valid_after_utc
    assert stale(issued[0], now=expires - datetime.timedelta(days=31)) == []
    assert stale(issued[0], now=expires - datetime.timedelta(days=29)) == ["server", "client"]


def test_a_replaced_key_or_a_missing_file_makes_a_certificate_stale(issued, tmp_path):
    folder = tmp_path / "internal"
    shutil.copytree(issued[0], folder)
    (folder / "localhost/server.key").write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (folder / "localhost/client.crt").unlink()
    assert stale(folder) == ["server", "client"]


def test_another_ca_or_none_makes_every_certificate_stale(issued, tmp_path):
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MLflow stack internal CA")])
    now = datetime.datetime.now(datetime.UTC)
    other = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "other.crt").write_bytes(other.public_bytes(serialization.Encoding.PEM))
    assert stale(issued[0], ca=tmp_path / "other.crt") == ["server", "client"]
    assert stale(issued[0], ca=tmp_path / "missing.crt") == ["server", "client"]
