"""All-in-one (scenario default): one host holds every part, verified through its proxy."""

from __future__ import annotations

import json

import pytest
from conftest import q

# Runs on the outsider: every TCP port of the host that accepts a connection.
SCAN = r"""
import asyncio, json, sys

async def probe(sem, port):
    async with sem:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(sys.argv[1], port), 3)
        except Exception:
            return None
        writer.close()
        return port

async def main():
    sem = asyncio.Semaphore(500)
    ports = await asyncio.gather(*(probe(sem, p) for p in range(1, 65536)))
    print(json.dumps([p for p in ports if p]))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def aio(lab):
    return lab.host("aio")


def test_the_verification_passed_through_the_proxy(lab):
    report = json.loads((lab.ephemeral / "verify" / "report.json").read_text())
    assert report["tracking_uri"] == "https://mlflow-aio.lab.test"
    assert report["ok"] is True, report["failed"]
    names = [c["name"] for c in report["checks"]]
    assert names[:3] == ["server answers", "TLS verified", "credentials required"]


def test_mlflow_listens_on_loopback_only(aio):
    listening = aio.check_output("ss -Htln 'sport = :5000'").split("\n")
    assert [line.split()[3] for line in listening] == ["127.0.0.1:5000"]
    assert "server 127.0.0.1:5000" in aio.check_output("cat /etc/nginx/sites-available/mlflow.conf")


def test_only_the_proxy_answers_from_outside(lab):
    found = lab.host("aio-outsider").check_output(f"python3 -c {q(SCAN)} {lab.ip('aio')}")
    assert json.loads(found) == [80, 443]
