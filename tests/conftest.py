"""Helpers for the unit tests (no containers needed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
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
    return validate_playbook(env, "-i", "localhost,", *options, "-e", f"@{extra}")


def validate_playbook(env: dict, *options: str) -> subprocess.CompletedProcess:
    """ansible-playbook tests/playbooks/validate_role.yml with these options."""
    return subprocess.run(
        ["ansible-playbook", *options, str(PROJECT / "tests/playbooks/validate_role.yml")],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


@pytest.fixture
def validate_role(tmp_path, ansible_env):
    """Run a role's input checks with the given variables; returns the result."""

    def run(role: str, variables: dict) -> subprocess.CompletedProcess:
        return run_role(tmp_path, ansible_env, role, variables, "--tags", "validate-only")

    return run


@pytest.fixture(scope="module")
def refusals(tmp_path_factory, ansible_env):
    """The role refuses each input, names the problem, and does so before
    any task that could change a host. refusals(role, [variables, ...]) runs
    the whole role once in check mode, each input a host of its own
    (connection local, the input as its host variables); check(variables,
    message) asserts for that input's host: it failed, in one of the role's
    checks, with the message, and no task before reported a change. One run
    for all inputs: ansible-playbook's start costs more than a host's checks."""

    def run(role: str, inputs: list[dict]) -> Callable[[dict, str], None]:
        folder = tmp_path_factory.mktemp(f"refusals-{role}")
        cache = Path(ansible_env["ANSIBLE_CACHE_PLUGIN_CONNECTION"])
        if not list(cache.glob("*localhost")):
            subprocess.run(
                ["ansible-playbook", "-i", "localhost,", str(PROJECT / "tests/playbooks/facts.yml")],
                cwd=PROJECT,
                env=ansible_env,
                capture_output=True,
                check=True,
            )
        # The controller's facts, gathered once, as each host's (gathering=smart
        # reads them); the cache names its files PREFIX + host ("s1_" in 2.19).
        (facts,) = cache.glob("*localhost")
        prefix = facts.name.removesuffix("localhost")
        hosts = {}
        for number, variables in enumerate(inputs):
            name = f"input{number}"
            shutil.copyfile(facts, cache / f"{prefix}{name}")
            hosts[name] = {
                **{k: v for k, v in variables.items() if v is not None},
                "ansible_connection": "local",
                "role_under_test": role,
            }
        inventory = folder / "inventory.json"
        inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
        result = validate_playbook(ansible_env, "-i", str(inventory), "--check")
        names = {json.dumps(v, sort_keys=True): n for n, v in zip(hosts, inputs, strict=True)}

        def check(variables: dict, message: str) -> None:
            host = names[json.dumps(variables, sort_keys=True)]
            blocks = result.stdout.split("\nTASK [")
            # The task whose block holds this host's failure, and the failure.
            failed = [b for b in blocks if re.search(rf"^(fatal|failed): \[{host}\]", b, re.M)]
            assert failed, f"{host} did not fail: " + result.stdout[-3000:] + result.stderr[-2000:]
            first = failed[0]
            task = first.split("]")[0]
            assert task.startswith((f"{role} : Validating arguments", f"{role} : Check")), task
            mine = re.search(rf"^(?:fatal|failed): \[{host}\].*?(?=^\S|\Z)", first, re.M | re.S).group(0)
            assert message in " ".join(mine.split()), mine
            # No task before the check would have changed anything.
            assert re.search(rf"^{host}\s+: ok=\d+\s+changed=0\s", result.stdout, re.M), result.stdout[-2000:]

        return check

    return run


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
