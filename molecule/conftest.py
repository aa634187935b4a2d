"""Fixtures shared by every scenario's testinfra verifier.

Molecule runs the verifier with MOLECULE_INVENTORY_FILE and
MOLECULE_EPHEMERAL_DIRECTORY set; hosts are reached through that inventory.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import testinfra

PROJECT = Path(__file__).resolve().parent.parent


@dataclass
class Lab:
    inventory: str
    ephemeral: Path

    def host(self, name: str):
        return testinfra.get_host(f"ansible://{name}", ansible_inventory=self.inventory)

    def secret(self, name: str) -> str:
        """A test secret written by the scenario's password lookup."""
        return (self.ephemeral / name).read_text().split()[0]

    def playbook(self, playbook: str, **extra_vars: object) -> subprocess.CompletedProcess:
        cmd = ["ansible-playbook", "-i", self.inventory, str(PROJECT / playbook)]
        for key, value in extra_vars.items():
            cmd += ["-e", f"{key}={value}" if isinstance(value, str) else json.dumps({key: value})]
        return subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def lab() -> Lab:
    return Lab(
        inventory=os.environ["MOLECULE_INVENTORY_FILE"],
        ephemeral=Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]),
    )


def q(value: str) -> str:
    return shlex.quote(value)
