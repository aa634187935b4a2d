"""The programs the lab tests run on hosts (molecule/labtest/programs) are
whole programs once labtest.hosts.program() has put tls_client in: each
compiles, and none still imports what the hosts do not have."""

from __future__ import annotations

import sys

import pytest
from conftest import PROJECT

sys.path.insert(0, str(PROJECT / "molecule"))
from labtest.hosts import PROGRAMS, program

NAMES = sorted(path.stem for path in PROGRAMS.glob("*.py"))


@pytest.mark.parametrize("name", NAMES)
def test_a_program_sent_to_a_host_stands_alone(name):
    text = program(name)
    compile(text, f"{name}.py", "exec")
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith("from tls_client import")]
    wants_tls = any(line.startswith("from tls_client import") for line in (PROGRAMS / f"{name}.py").open())
    assert ("def tls_context():" in lines) == (wants_tls or name == "tls_client")
