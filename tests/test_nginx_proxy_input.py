"""Bad input to role nginx_proxy stops the run before any change, naming the variable."""

from __future__ import annotations

import pytest

GOOD = {
    "nginx_proxy_server_name": "mlflow.example.com",
    "nginx_proxy_upstreams": ["10.0.0.7:5000", "10.0.0.8:5000"],
    "nginx_proxy_users": [{"name": "alice", "password": "a-long-enough-password"}],
}


def test_good_input_passes(accepts):
    accepts("nginx_proxy", GOOD)


def test_load_balancers_as_addresses_and_networks_pass(accepts):
    accepts("nginx_proxy", {**GOOD, "nginx_proxy_trusted_proxies": ["10.0.0.10", "10.1.0.0/24", "fd00::/64"]})


def test_a_generated_secret_of_128_bits_is_accepted(accepts):
    # 22 letters and digits: 22 x log2(62) = 131 bits.
    accepts(
        "nginx_proxy",
        {**GOOD, "nginx_proxy_users": [{"name": "ci", "password": "aB3" * 7 + "x", "generated": True}]},
    )


def test_mlflow_auth_mode_needs_no_users(accepts):
    accepts("nginx_proxy", {**GOOD, "nginx_proxy_users": [], "nginx_proxy_auth_mode": "mlflow"})


BAD = [
    ({"nginx_proxy_users": []}, "nginx_proxy_users is empty"),
    (
        {"nginx_proxy_users": [{"name": "alice", "password": "short"}]},
        "the password of alice is shorter than",
    ),
    ({"nginx_proxy_users": [{"name": "alice"}]}, "missing required arguments: password"),
    ({"nginx_proxy_users": None}, "nginx_proxy_users is empty"),
    (
        {"nginx_proxy_tls_mode": "provided", "nginx_proxy_tls_certificate": "CERT"},
        "a certificate without its key",
    ),
    ({"nginx_proxy_tls_mode": "provided", "nginx_proxy_tls_key": "KEY"}, "a certificate without its key"),
    ({"nginx_proxy_server_name": "not a host!"}, "invalid host name(s) in nginx_proxy_server_name"),
    ({"nginx_proxy_server_aliases": ["-bad.example.com"]}, "invalid host name(s)"),
    ({"nginx_proxy_upstreams": ["10.0.0.7"]}, "nginx_proxy_upstreams entries must be address:port"),
    ({"nginx_proxy_upstreams": []}, "no MLflow server to proxy to"),
    ({"nginx_proxy_listen_address": "public"}, "nginx_proxy_listen_address=public is not an IP address"),
    ({"nginx_proxy_tls_mode": "letsencrypt"}, "nginx_proxy_tls_mode must be one of"),
    ({"nginx_proxy_auth_mode": "none"}, "nginx_proxy_auth_mode must be one of"),
    # 21 letters and digits hold ~125 bits: too few for the fast hash.
    (
        {"nginx_proxy_users": [{"name": "ci", "password": "aB3" * 7, "generated": True}]},
        "ci marked `generated: true` but the password cannot hold 128 bits",
    ),
    (
        {"nginx_proxy_users": [{"name": "ci", "password": "correcthorsebatterystaple", "generated": True}]},
        "ci marked `generated: true`",
    ),
    ({"nginx_proxy_bcrypt_cost": 5}, "nginx_proxy_bcrypt_cost=5 must be 10-17"),
    ({"nginx_proxy_ban_ignore": ["monitoring"]}, "nginx_proxy_ban_ignore must hold addresses"),
    ({"nginx_proxy_trusted_proxies": ["lb.example.com"]}, "nginx_proxy_trusted_proxies must hold addresses"),
    ({"nginx_proxy_ban_max_failures": 1}, "nginx_proxy_ban_max_failures must be 3 or more"),
    ({"nginx_proxy_retry_after": 0}, "nginx_proxy_retry_after=0 must be at least 1"),
]


@pytest.fixture(scope="module")
def refused(refusals):
    """Every input of BAD in one run of the role (tests/conftest.py: refusals)."""
    return refusals("nginx_proxy", [{**GOOD, **case[0]} for case in BAD])


@pytest.mark.parametrize(
    ("changes", "message"), BAD, ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None
)
def test_bad_input_fails_before_any_change(refused, changes, message):
    refused({**GOOD, **changes}, message)


def test_passwords_do_not_leak(hides):
    hides("nginx_proxy", {**GOOD, "nginx_proxy_users": [{"name": "alice", "password": "Zq9xQw"}]}, "Zq9xQw")
