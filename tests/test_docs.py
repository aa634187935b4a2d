"""Role documentation stays in step with the roles."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from conftest import PROJECT

ROLES = sorted(p.name for p in (PROJECT / "roles").iterdir() if (p / "meta/argument_specs.yml").exists())


@pytest.mark.parametrize("role", ROLES)
def test_readme_variables_match_argument_specs(role, tmp_path):
    copy = tmp_path / role
    shutil.copytree(PROJECT / "roles" / role, copy)
    subprocess.run(["aar-doc", str(copy), "markdown"], check=True, capture_output=True)
    expected = (copy / "README.md").read_text()
    assert (PROJECT / "roles" / role / "README.md").read_text() == expected, (
        f"roles/{role}/README.md is out of date: run scripts/docs"
    )


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_specified(role):
    root = PROJECT / "roles" / role
    defaults = yaml.safe_load((root / "defaults/main.yml").read_text()) or {}
    specs = yaml.safe_load((root / "meta/argument_specs.yml").read_text())["argument_specs"]
    options = specs["main"]["options"]
    assert not set(defaults) - set(options), "defaults missing from meta/argument_specs.yml"
    assert not [k for k in defaults if not k.startswith(f"{role}_")], "defaults must carry the role prefix"
    for name, spec in options.items():
        assert name.startswith(f"{role}_"), name
        assert spec.get("description"), f"{name} has no description"
        assert name in defaults or spec.get("required"), f"{name}: neither a default nor required"
