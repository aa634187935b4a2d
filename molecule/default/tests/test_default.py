"""All-in-one (scenario default): one host holds every part, verified through its proxy."""

from __future__ import annotations

import json

import pytest
from conftest import open_ports


@pytest.fixture(scope="module")
def aio(lab):
    return lab.host("aio")


def test_the_verification_passed_through_the_proxy(lab):
    report = json.loads((lab.ephemeral / "verify" / "report.json").read_text())
    assert report["tracking_uri"] == f"https://{lab.var('aio', 'mlflow_stack_public_name')}"
    assert report["ok"] is True, report["failed"]
    names = [c["name"] for c in report["checks"]]
    assert names[:3] == ["server answers", "TLS verified", "credentials required"]


def test_mlflow_listens_on_loopback_only(aio):
    listening = aio.check_output("ss -Htln 'sport = :5000'").split("\n")
    assert [line.split()[3] for line in listening] == ["127.0.0.1:5000"]
    assert "server 127.0.0.1:5000" in aio.check_output("cat /etc/nginx/sites-available/mlflow.conf")


def test_only_the_proxy_answers_from_outside(lab):
    assert open_ports(lab, "aio-outsider", ["aio"]) == {"aio": [80, 443]}
