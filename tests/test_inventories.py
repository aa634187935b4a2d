"""The example inventories parse, name every group and work with site.yml."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import PROJECT

GROUPS = {"mlflow_db", "mlflow_artifacts", "mlflow_server", "mlflow_proxy"}


@pytest.mark.parametrize("env", ["prod", "staging"])
def test_inventory_has_every_group(env):
    out = subprocess.run(
        ["ansible-inventory", "-i", f"inventories/{env}", "--list"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    inventory = json.loads(out)
    for group in GROUPS:
        assert inventory[group]["hosts"], f"{env}: group {group} has no host"


@pytest.mark.parametrize("env", ["prod", "staging"])
def test_site_syntax(env):
    result = subprocess.run(
        ["ansible-playbook", "-i", f"inventories/{env}", "--syntax-check", "site.yml"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("env", ["prod", "staging"])
def test_the_short_inventory_name_works(env):
    """`ansible-playbook site.yml -i prod`, as ops teams type it."""
    result = subprocess.run(
        ["ansible-playbook", "-i", env, "--list-hosts", "site.yml"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mlflow-" in result.stdout


def test_a_mistyped_inventory_fails():
    result = subprocess.run(
        ["ansible-playbook", "-i", "prd", "--list-hosts", "site.yml"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "No inventory was parsed" in result.stdout + result.stderr


def test_no_inventory_names_the_right_one():
    result = subprocess.run(
        ["ansible-playbook", "site.yml"], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "-i inventories/prod (or -i prod)" in " ".join((result.stdout + result.stderr).split())
