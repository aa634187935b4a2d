"""Helpers for the unit tests (no containers needed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def ansible_env(tmp_path_factory):
    """The environment of the tests' ansible-playbook runs: plain output, and
    the controller's facts gathered once for the whole session (a fact cache
    in a folder of its own; gathering=smart in ansible.cfg reads it), not in
    each run (1.1 s of a 1.9 s check)."""
    return {
        **os.environ,
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_COLOR": "1",
        "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path_factory.mktemp("facts")),
    }


def run_role(
    folder: Path, env: dict, role: str, variables: dict, *options: str
) -> subprocess.CompletedProcess:
    """A role on the controller (tests/playbooks/validate_role.yml) with the
    given variables (written to FOLDER/vars.json) and ansible-playbook options."""
    extra = folder / "vars.json"
    extra.write_text(json.dumps({"role_under_test": role, **variables}))
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            "localhost,",
            *options,
            "-e",
            f"@{extra}",
            str(PROJECT / "tests/playbooks/validate_role.yml"),
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


@pytest.fixture
def validate_role(tmp_path, ansible_env):
    """Run a role's input checks with the given variables; returns the result."""

    def run(role: str, variables: dict, whole_role: bool = False) -> subprocess.CompletedProcess:
        """whole_role: the whole role in check mode (for input it must refuse
        before any task could change something); else only its checks."""
        return run_role(
            tmp_path,
            ansible_env,
            role,
            variables,
            *(["--check"] if whole_role else ["--tags", "validate-only"]),
        )

    return run


@pytest.fixture
def rejects(validate_role):
    """Assert the role refuses the variables, names the problem, and does so
    before any task that could change a host: the whole role runs (check
    mode, on the controller) and stops at its checks with nothing changed."""

    def check(role: str, variables: dict, message: str) -> None:
        result = validate_role(role, {k: v for k, v in variables.items() if v is not None}, whole_role=True)
        output = " ".join((result.stdout + result.stderr).split())
        assert result.returncode != 0, output
        assert message in output, output
        # The task that stopped the run is one of the role's checks, and no
        # task before it would have changed anything (check mode reports it).
        failed = re.findall(r"TASK \[([^\]]+)\]", result.stdout.split("fatal:")[0])[-1]
        assert failed.startswith((f"{role} : Validating arguments", f"{role} : Check")), failed
        assert re.search(r"localhost\s+: ok=\d+\s+changed=0\s", result.stdout), result.stdout[-2000:]

    return check


@pytest.fixture
def accepts(validate_role):
    """Assert the role accepts the variables."""

    def check(role: str, variables: dict) -> None:
        result = validate_role(role, variables)
        assert result.returncode == 0, result.stdout + result.stderr

    return check


@pytest.fixture
def hides(validate_role):
    """Assert the role's checks ran, failed, and showed none of the given secrets."""

    def check(role: str, variables: dict, *secrets: str) -> None:
        result = validate_role(role, variables)
        output = result.stdout + result.stderr
        # The input is bad on purpose: the role's own assert must have run and
        # refused it (a run stopped earlier would prove nothing).
        assert f"TASK [{role} : Check the input]" in output, output
        assert f"Invalid input for role {role}" in " ".join(output.split()), output
        assert result.returncode != 0, output
        for secret in secrets:
            assert secret not in output

    return check
