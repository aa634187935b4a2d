"""Bad input to role mlflow_server stops the run before any change, naming the variable."""

from __future__ import annotations

import pytest

GOOD = {
    "mlflow_server_host": "10.0.0.7",
    "mlflow_server_db_host": "10.0.0.5",
    "mlflow_server_db_password": "a-long-enough-password",
    "mlflow_server_s3_endpoint_url": "http://10.0.0.6:8333",
    "mlflow_server_s3_access_key": "ACCESS",
    "mlflow_server_s3_secret_key": "a-secret-key-long-enough",
    "mlflow_server_crypto_passphrase": "0123456789abcdef0123456789abcdef",
}


AUTH = {
    "mlflow_server_auth_app": True,
    "mlflow_server_auth_admin_password": "an-admin-password",
    "mlflow_server_flask_secret_key": "0123456789abcdef0123456789abcdef",
}


def test_auth_app_input_passes(accepts):
    accepts(
        "mlflow_server",
        {**GOOD, **AUTH, "mlflow_server_auth_users": [{"name": "carol", "password": "x" * 12}]},
    )


def test_good_input_passes(accepts):
    accepts("mlflow_server", GOOD)


@pytest.mark.parametrize(
    "docker",
    [
        {"mlflow_server_docker_image": "registry.example.com:5000/team/mlflow:3.17.2-abc"},
        {"mlflow_server_docker_base_image": "python:3.12-slim-bookworm", "mlflow_server_docker_memory": "4g"},
    ],
)
def test_docker_mode_input_passes(accepts, docker):
    for network in ("bridge", "host"):
        variables = {"mlflow_server_install_mode": "docker", "mlflow_server_docker_network": network}
        variables.update(docker)
        accepts("mlflow_server", {**GOOD, **variables})


def test_external_database_uri_needs_no_password(validate_role):
    variables = {**GOOD, "mlflow_server_db_password": "", "mlflow_server_db_host": ""}
    variables["mlflow_server_backend_store_uri"] = "postgresql+psycopg://mlflow:pw@db.example.com:5432/mlflow"
    result = validate_role("mlflow_server", variables)
    assert result.returncode == 0, result.stdout + result.stderr


BAD = [
    ({"mlflow_server_install_mode": "kubernetes"}, "mlflow_server_install_mode must be one of"),
    ({"mlflow_server_version": "latest"}, "mlflow_server_version=latest is not a version like 3.17.2"),
    ({"mlflow_server_version": "3.17"}, "mlflow_server_version=3.17 is not a version like 3.17.2"),
    ({"mlflow_server_version": "2.22.0"}, "mlflow_server_version=2.22.0: this role runs MLflow 3.x"),
    ({"mlflow_server_db_password": ""}, "mlflow_server_db_password is missing"),
    ({"mlflow_server_crypto_passphrase": "x" * 31}, "mlflow_server_crypto_passphrase is missing or shorter"),
    (
        {"mlflow_server_db_password": "two\nlines-password", "mlflow_server_env": {"X": "a\rb"}},
        "mlflow_server_db_password, mlflow_server_env: a line break or NUL cannot be handed to MLflow",
    ),
    ({"mlflow_server_db_host": ""}, "mlflow_server_db_host is empty"),
    ({"mlflow_server_backend_store_uri": "sqlite:///mlflow.db"}, "must be a postgresql:// URI"),
    (
        {"mlflow_server_artifacts_destination": "/var/lib/mlflow/artifacts"},
        "is not an s3://BUCKET[/PREFIX] URI",
    ),
    ({"mlflow_server_artifacts_destination": "gs://bucket/x"}, "is not an s3://BUCKET[/PREFIX] URI"),
    ({"mlflow_server_workers": 0}, "mlflow_server_workers=0 must be at least 1"),
    ({"mlflow_server_db_pool_size": 0}, "mlflow_server_db_pool_size=0 and"),
    ({"mlflow_server_db_pool_overflow": 0}, "mlflow_server_db_pool_overflow=0 must"),
    ({"mlflow_server_port": 99999}, "mlflow_server_port=99999 is not a TCP port"),
    ({"mlflow_server_host": "mlflow.local"}, "mlflow_server_host=mlflow.local is not an IP address"),
    (
        {"mlflow_server_s3_secret_key": ""},
        "mlflow_server_s3_access_key and mlflow_server_s3_secret_key go together",
    ),
    ({"mlflow_server_s3_endpoint_url": "minio:9000"}, "mlflow_server_s3_endpoint_url=minio:9000 is not"),
    ({"mlflow_server_static_prefix": "mlflow/"}, "mlflow_server_static_prefix=mlflow/ must start with /"),
    (
        {"mlflow_server_public_hostnames": ["bad host!"]},
        "mlflow_server_public_hostnames has invalid names: bad host!",
    ),
    ({"mlflow_server_artifacts_mode": "local"}, "mlflow_server_artifacts_mode must be one of"),
    ({"mlflow_server_install_source": "conda"}, "mlflow_server_install_source must be one of"),
    (
        {"mlflow_server_docker_image": "Registry.example.com/MLflow"},
        "mlflow_server_docker_image=Registry.example.com/MLflow is not an image reference",
    ),
    (
        {"mlflow_server_docker_repository": "mlflow-vm/mlflow:3.17.2"},
        "mlflow_server_docker_repository=mlflow-vm/mlflow:3.17.2 is not a repository name",
    ),
    (
        {"mlflow_server_docker_base_image": "python 3.12"},
        "mlflow_server_docker_base_image=python 3.12 is not an image reference",
    ),
    (
        {"mlflow_server_docker_base_image_archive": "/nonexistent/base.tar"},
        "mlflow_server_docker_base_image_archive=/nonexistent/base.tar is not a file on the controller",
    ),
    ({"mlflow_server_docker_memory": "4 GB"}, "mlflow_server_docker_memory=4 GB is not a size like 4g"),
    ({"mlflow_server_docker_network": "overlay"}, "mlflow_server_docker_network must be one of"),
    ({"mlflow_server_docker_cpus": -1}, "mlflow_server_docker_cpus=-1 must not be negative"),
    (
        {"mlflow_server_gc_host": "other-host"},
        "mlflow_server_gc_host=other-host is not a server of mlflow_server_fleet",
    ),
    (
        {"mlflow_server_periodic_tasks_host": "other-host"},
        "mlflow_server_periodic_tasks_host=other-host is not a server of mlflow_server_fleet",
    ),
    (
        {**AUTH, "mlflow_server_auth_admin_password": ""},
        "mlflow_server_auth_admin_password is missing or shorter than 12 characters",
    ),
    (
        {**AUTH, "mlflow_server_flask_secret_key": "short"},
        "mlflow_server_flask_secret_key is missing or shorter than 32 characters",
    ),
    (
        {**AUTH, "mlflow_server_backend_store_uri": "postgresql://mlflow:pw@db.example.com/mlflow"},
        "mlflow_server_auth_db_uri is needed with an external mlflow_server_backend_store_uri",
    ),
    (
        {**AUTH, "mlflow_server_auth_users": [{"name": "carol", "password": "short"}]},
        "every user needs a password of at least 12 characters",
    ),
    (
        {**AUTH, "mlflow_server_auth_users": [{"name": "carol smith", "password": "long-enough-pw"}]},
        "every user needs a name of letters, digits",
    ),
    (
        {**AUTH, "mlflow_server_auth_default_permission": "ALL"},
        "mlflow_server_auth_default_permission must be one of",
    ),
]


@pytest.fixture(scope="module")
def refused(refusals):
    """Every input of BAD in one run of the role (tests/conftest.py: refusals)."""
    return refusals("mlflow_server", [{**GOOD, **case[0]} for case in BAD])


@pytest.mark.parametrize(
    ("changes", "message"), BAD, ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None
)
def test_bad_input_fails_before_any_change(refused, changes, message):
    refused({**GOOD, **changes}, message)


def test_passwords_do_not_leak(hides):
    variables = {
        **GOOD,
        **AUTH,
        "mlflow_server_version": "bad",
        "mlflow_server_db_password": "Zq9xQw-pw",
        "mlflow_server_auth_admin_password": "Yv8wPo-admin",
    }
    hides("mlflow_server", variables, "Zq9xQw", "Yv8wPo")
