"""Helpers for the unit tests (no containers needed)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def validate_role(tmp_path):
    """Run a role's input checks with the given variables; returns the result."""

    def run(role: str, variables: dict) -> subprocess.CompletedProcess:
        extra = tmp_path / "vars.json"
        extra.write_text(json.dumps({"role_under_test": role, **variables}))
        return subprocess.run(
            [
                "ansible-playbook",
                "-i",
                "localhost,",
                "--tags",
                "validate-only",
                "-e",
                f"@{extra}",
                str(PROJECT / "tests/playbooks/validate_role.yml"),
            ],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1"},
        )

    return run
