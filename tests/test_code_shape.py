"""The shape a reader relies on: short Jinja (logic longer than a line lives
in a role's filter plugin, tested as Python), and no role that runs steps of
another role (tasks_from: the steps that span hosts are the playbooks'; a
helper role used whole, as the wheelhouse is, is a dependency)."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import PROJECT

LONGEST = 200
PATTERNS = [
    "roles/*/tasks/*.yml",
    "roles/*/vars/*.yml",
    "roles/*/defaults/*.yml",
    "roles/*/handlers/*.yml",
    "playbooks/**/*.yml",
]
FILES = sorted([*(path for pattern in PATTERNS for path in PROJECT.glob(pattern)), PROJECT / "site.yml"])
EXPRESSION = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)


def strings(node, path=""):
    """Every string of a YAML document, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def expressions(text: str) -> list[str]:
    """The Jinja expressions and statements of a string, whitespace folded."""
    return [" ".join(found.split()) for found in EXPRESSION.findall(text)]


def test_the_scanner_finds_a_long_expression():
    long = "{{ " + " + ".join(["a_variable"] * 30) + " }}"
    assert [len(e) for e in expressions(f"x {long} y {{{{ b }}}}")] == [len(long), 7]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PROJECT)))
def test_no_jinja_expression_is_longer_than_a_line(path):
    too_long = [
        f"{where}: {len(expression)} characters"
        for where, text in strings(yaml.safe_load(path.read_text()))
        for expression in expressions(text)
        if len(expression) > LONGEST
    ]
    assert too_long == [], f"split them into named variables or move the logic to a filter plugin: {too_long}"


ROLES = sorted(p.name for p in (PROJECT / "roles").iterdir() if (p / "tasks").is_dir())


def includes(node):
    """The include_role / import_role arguments of a YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith(("include_role", "import_role")) and isinstance(value, dict):
                yield value
            else:
                yield from includes(value)
    elif isinstance(node, list):
        for value in node:
            yield from includes(value)


@pytest.mark.parametrize("role", ROLES)
def test_a_role_runs_no_steps_of_another_role(role):
    steps = [
        f"{path.name}: {include['name']} tasks_from {include['tasks_from']}"
        for path in (PROJECT / "roles" / role).glob("*/*.yml")
        for include in includes(yaml.safe_load(path.read_text()))
        if include.get("name") != role and "tasks_from" in include
    ]
    assert steps == [], steps
