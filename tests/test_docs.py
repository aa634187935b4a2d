"""Role documentation stays in step with the roles."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys

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


# The front page and docs/: what they name must exist, so a renamed variable
# or a moved file fails here instead of misleading a reader.
PAGES = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
ROLE_PREFIXES = "|".join(sorted(ROLES, key=len, reverse=True))
ROLE_VARIABLE = re.compile(rf"\b(?:{ROLE_PREFIXES})_[a-z0-9_]*[a-z0-9]\b")
# A path in backticks (a command's first word) or a link; NAME, ENV, X,
# {a,b} and * stand for any part.
PATH = re.compile(r"`((?:roles|playbooks|scripts|bench|files|molecule|docs|inventories|tests)/[^`\s]*)")
LINK = re.compile(r"\]\(([^)#:]+)(?:#[^)]*)?\)")


@functools.cache
def code_words() -> frozenset[str]:
    """Every word of the roles and playbooks: variables, facts, registered names."""
    words: set[str] = set()
    for folder in ("roles", "playbooks"):
        for path in (PROJECT / folder).rglob("*"):
            if path.suffix in (".yml", ".j2", ".py") and path.is_file():
                words |= set(re.findall(r"\w+", path.read_text()))
    return frozenset(words)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_variable_a_page_names_exists(page):
    unknown = sorted(set(ROLE_VARIABLE.findall(page.read_text())) - code_words())
    assert not unknown, f"{page.name} names variables no role or playbook has"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_path_and_link_of_a_page_exists(page):
    text = page.read_text()
    missing = []
    for path in PATH.findall(text):
        pattern = re.sub(r"\b(NAME|ENV|X|VERSION|DB|STAGE)\b|\{[^}]*\}", "*", path.rstrip("/.,:;"))
        if not list(PROJECT.glob(pattern)):
            missing.append(path)
    for link in LINK.findall(text):
        if not (page.parent / link).exists():
            missing.append(link)
    assert not missing, f"{page.name} points to what does not exist"


def test_the_wiring_table_matches_the_wiring():
    """docs/architecture.md's "role variable <- stack setting" table is
    scripts/wiring_table.py's output for playbooks/vars/wiring.yml."""
    run = subprocess.run(
        [sys.executable, str(PROJECT / "scripts" / "wiring_table.py"), "--check"], check=False
    )
    assert run.returncode == 0, "docs/architecture.md's wiring table is out of date: run scripts/docs"


@pytest.mark.parametrize("role", ROLES)
def test_each_variable_is_described_once_in_its_argument_spec(role):
    """defaults/main.yml holds values, and at most a header before the first
    one: a comment beside a variable is a second description, which drifts
    from the argument spec's (52 of 187 said different things)."""
    lines = (PROJECT / "roles" / role / "defaults/main.yml").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if re.match(r"[a-z0-9_]+:", line))
    described = [line for line in lines[first:] if line.lstrip().startswith("#")]
    assert not described, f"roles/{role}/defaults/main.yml describes variables: say it in the argument spec"
