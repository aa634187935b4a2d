"""Bad input to role mlflow_verify stops the run before anything runs, naming the variable."""

from __future__ import annotations

import pytest

GOOD = {
    "mlflow_verify_url": "https://mlflow.example.com",
    "mlflow_verify_username": "alice",
    "mlflow_verify_password": "a-long-enough-password",
    "mlflow_verify_ca_cert": "",
}


def test_good_input_passes(accepts):
    accepts("mlflow_verify", {**GOOD, "mlflow_verify_resolve": ["mlflow.example.com:10.0.0.9"]})


def test_open_server_needs_no_user_when_auth_not_expected(accepts):
    accepts(
        "mlflow_verify",
        {
            **GOOD,
            "mlflow_verify_username": "",
            "mlflow_verify_password": "",
            "mlflow_verify_expect_auth": False,
        },
    )


BAD = [
    ({"mlflow_verify_url": ""}, "mlflow_verify_url= is not an http(s):// URL (site.yml sets it"),
    (
        {"mlflow_verify_url": "mlflow.example.com"},
        "mlflow_verify_url=mlflow.example.com is not an http(s)",
    ),
    ({"mlflow_verify_password": ""}, "mlflow_verify_username and mlflow_verify_password go together"),
    (
        {"mlflow_verify_username": "", "mlflow_verify_password": ""},
        "mlflow_verify_username is empty while mlflow_verify_expect_auth is on",
    ),
    (
        {"mlflow_verify_ca_cert": "/nonexistent/ca.crt"},
        "mlflow_verify_ca_cert=/nonexistent/ca.crt is not a file",
    ),
    (
        {"mlflow_verify_resolve": ["mlflow.example.com"]},
        "mlflow_verify_resolve entries must be HOST:ADDRESS",
    ),
    (
        {"mlflow_verify_runner": "nowhere"},
        "mlflow_verify_runner=nowhere is neither localhost nor an inventory",
    ),
    ({"mlflow_verify_install_source": "conda"}, "mlflow_verify_install_source must be one of"),
]


@pytest.fixture(scope="module")
def refused(refusals):
    """Every input of BAD in one run of the role (tests/conftest.py: refusals)."""
    return refusals("mlflow_verify", [{**GOOD, **case[0]} for case in BAD])


@pytest.mark.parametrize(
    ("changes", "message"), BAD, ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None
)
def test_bad_input_fails_before_any_change(refused, changes, message):
    refused({**GOOD, **changes}, message)


def test_password_does_not_leak(hides):
    hides(
        "mlflow_verify", {**GOOD, "mlflow_verify_url": "bad", "mlflow_verify_password": "Zq9xQw-pw"}, "Zq9xQw"
    )
