"""Bad input to role firewall stops the run before any change, naming the problem."""

from __future__ import annotations

import pytest

GOOD = {
    "firewall_allow": [
        {"name": "mlflow", "port": 5000, "sources": ["10.0.0.5", "10.0.1.0/24", "fd00::5"]},
        {"name": "https", "port": 443, "sources": ["0.0.0.0/0", "::/0"]},
    ],
    "firewall_allow_extra": [
        {"name": "exporter", "port": "9100-9101", "proto": "tcp", "sources": ["10.0.9.9"]}
    ],
    "firewall_container_interfaces": ["docker0", "br-*", "cni-podman0"],
}


def test_good_input_passes(accepts):
    accepts("firewall", GOOD)


BAD = [
    # An empty address: the facts of a host in a group were not gathered.
    (
        {"firewall_allow": [{"name": "mlflow", "port": 5000, "sources": [""]}]},
        "sources must be IP addresses or networks",
    ),
    (
        {"firewall_allow": [{"name": "mlflow", "port": 5000, "sources": ["mlflow-proxy-1"]}]},
        "sources must be IP addresses or networks, not ['mlflow-proxy-1']",
    ),
    (
        {"firewall_allow": [{"name": "x", "port": "http", "sources": []}]},
        "ports must be a number or first-last",
    ),
    ({"firewall_allow": [{"name": "x", "port": 80, "proto": "icmp"}]}, "proto must be one of"),
    ({"firewall_allow": [{"port": 80}]}, "missing required arguments: name"),
    ({"firewall_ssh_sources": ["bastion"]}, "firewall_ssh_sources must be IP addresses"),
    ({"firewall_ssh_port": 0}, "firewall_ssh_port=0 is not a port"),
    # A quote would end the nft string the name goes into.
    (
        {"firewall_container_interfaces": ['docker0" accept #']},
        "firewall_container_interfaces must be interface names",
    ),
    (
        {"firewall_container_interfaces": ["br-*-x"]},
        "firewall_container_interfaces must be interface names",
    ),
]


@pytest.fixture(scope="module")
def refused(refusals):
    """Every input of BAD in one run of the role (tests/conftest.py: refusals)."""
    return refusals("firewall", [{**GOOD, **case[0]} for case in BAD])


@pytest.mark.parametrize(
    ("changes", "message"), BAD, ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None
)
def test_bad_input_fails_before_any_change(refused, changes, message):
    refused({**GOOD, **changes}, message)
