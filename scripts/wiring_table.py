"""The table "role variable <- stack setting" of docs/architecture.md, read
from playbooks/vars/wiring.yml: for each role variable the wiring sets, the
stack settings its value comes from (through the file's __ helpers too), and
whether the inventory's groups or the hosts' facts take part. scripts/docs
writes it between the markers; tests/test_docs.py fails when it drifts.

Usage: python3 scripts/wiring_table.py [--check]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent
WIRING = PROJECT / "playbooks" / "vars" / "wiring.yml"
PAGE = PROJECT / "docs" / "architecture.md"
STACK_SETTINGS = set(
    yaml.safe_load((PROJECT / "roles" / "mlflow_stack" / "defaults" / "main.yml").read_text())
)
ROLES = "nginx_proxy|postgresql|s3_storage|mlflow_server|mlflow_verify"
BEGIN, END = "<!-- BEGIN_WIRING_TABLE -->", "<!-- END_WIRING_TABLE -->"


def sources(name: str, wiring: dict, seen: frozenset = frozenset()) -> tuple[list[str], list[str]]:
    """(stack settings, other inputs) that the value of `name` reads."""
    text = yaml.safe_dump(wiring[name])
    # Names after a pipe are filters (roles/mlflow_stack/filter_plugins).
    named = set(re.findall(r"(?<!\| )\bmlflow_stack_[a-z0-9_]+", text))
    settings = named & STACK_SETTINGS
    other = {f"`{fact}` (set by role mlflow_stack)" for fact in named - STACK_SETTINGS}
    # Another role's variables the wiring does not set: the inventory's.
    given = set(re.findall(rf"\b(?:{ROLES})_[a-z0-9_]+", text))
    other |= {f"`{variable}` (inventory)" for variable in given - set(wiring)}
    if re.search(r"\bgroups\b|\bhostvars\b", text):
        other.add("the inventory's groups")
    if "inventory_hostname" in text:
        other.add("the host's name")
    if "group_names" in text:
        other.add("the host's groups")
    if "playbook_dir" in text:
        other.add("the playbook's folder")
    if "ansible_facts" in text or "default_ipv4" in text:
        other.add("the hosts' facts")
    for helper in set(re.findall(r"\b(?:__mlflow_stack_[a-z0-9_]+|internal_tls_[a-z0-9_]+)", text)):
        if helper in wiring and helper != name and helper not in seen:
            more, more_other = sources(helper, wiring, seen | {name})
            settings |= set(more)
            other |= set(more_other)
    return sorted(settings), sorted(other)


def table() -> str:
    wiring = yaml.safe_load(WIRING.read_text())
    rows = ["| role variable | from the stack settings | and |", "|---|---|---|"]
    for name in wiring:
        if name.startswith("__"):
            continue
        settings, other = sources(name, wiring)
        rows.append(f"| `{name}` | {', '.join(f'`{s}`' for s in settings) or '-'} | {', '.join(other)} |")
    return "\n".join(rows) + "\n"


def page_with_table() -> str:
    text = PAGE.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + table() + text[end:]


def main(args: list[str]) -> int:
    wanted = page_with_table()
    if args == ["--check"]:
        return 0 if PAGE.read_text() == wanted else 1
    PAGE.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
