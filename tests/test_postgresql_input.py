"""Bad input to role postgresql stops the run before any change, naming the variable."""

from __future__ import annotations

import copy

import pytest

GOOD = {
    "postgresql_hba_clients": ["10.0.0.5", "10.1.0.0/16"],
    "postgresql_users": [{"name": "mlflow", "password": "a-long-enough-password"}],
    "postgresql_databases": [{"name": "mlflow", "owner": "mlflow"}],
}


def with_(**changes):
    variables = copy.deepcopy(GOOD)
    variables.update(changes)
    return variables


def test_good_input_passes(accepts):
    accepts("postgresql", GOOD)


BAD = [
    pytest.param(with_(postgresql_version="9.6"), "postgresql_version=9.6 is not available", id="version"),
    pytest.param(with_(postgresql_port=70000), "postgresql_port=70000 is not a TCP port", id="port"),
    pytest.param(
        {k: v for k, v in GOOD.items() if k != "postgresql_users"},
        "missing required arguments: postgresql_users",
        id="users-missing",
    ),
    pytest.param(
        with_(postgresql_users=[{"name": "mlflow"}]),
        "missing required arguments: password",
        id="password-missing",
    ),
    pytest.param(
        with_(postgresql_users=[{"name": "mlflow", "password": ""}]),
        "the password of mlflow is empty or shorter",
        id="password-empty",
    ),
    pytest.param(
        with_(postgresql_users=[{"name": "mlflow", "password": "short"}]),
        "the password of mlflow is empty or shorter",
        id="password-short",
    ),
    pytest.param(
        with_(postgresql_hba_clients=["10.0.0.0/33"]),
        "malformed addresses/CIDRs: 10.0.0.0/33",
        id="cidr-prefix",
    ),
    pytest.param(
        with_(postgresql_hba_clients=["10.1.2.3/24"]),
        "malformed addresses/CIDRs: 10.1.2.3/24",
        id="cidr-host-bits",
    ),
    pytest.param(
        with_(postgresql_hba_clients=["db.example.com"]),
        "malformed addresses/CIDRs: db.example.com",
        id="cidr-not-an-address",
    ),
    pytest.param(
        with_(postgresql_hba_clients=[]),
        "postgresql_hba_clients is empty and group mlflow_server has no hosts",
        id="no-clients",
    ),
    pytest.param(
        with_(postgresql_databases=[{"name": "mlflow", "owner": "nobody"}]),
        "owner(s) nobody not in postgresql_users",
        id="unknown-owner",
    ),
    pytest.param(with_(postgresql_backup_keep=0), "postgresql_backup_keep must be at least 1", id="keep"),
]


@pytest.fixture(scope="module")
def refused(refusals):
    """Every input of BAD in one run of the role (tests/conftest.py: refusals)."""
    return refusals("postgresql", [case.values[0] for case in BAD])


@pytest.mark.parametrize(("variables", "message"), BAD)
def test_bad_input_fails_before_any_change(refused, variables, message):
    refused(variables, message)


# A short password (refused for itself) and a good one next to another error.
@pytest.mark.parametrize(("password", "port"), [("Zq9xQw", 5432), ("Zq9xQw-but-long-enough", 70000)])
def test_passwords_do_not_leak(hides, password, port):
    variables = with_(postgresql_users=[{"name": "mlflow", "password": password}], postgresql_port=port)
    hides("postgresql", variables, "Zq9xQw")
