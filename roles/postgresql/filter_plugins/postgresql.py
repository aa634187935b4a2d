"""Filters of role postgresql: its input checks, as plain Python with their
own tests (tests/test_filter_plugins.py)."""

from __future__ import annotations

import ipaddress


def bad_clients(clients: list) -> list[str]:
    """The pg_hba client entries that are neither an address nor a network
    whose host bits are zero (PostgreSQL rejects 10.0.0.5/24)."""
    bad = []
    for client in map(str, clients):
        try:
            ipaddress.ip_network(client, strict=True)
        except ValueError:
            bad.append(client)
    return bad


def short_passwords(users: list[dict], min_length: int) -> list[str]:
    """The names of the users whose password (none counts as empty) is
    shorter than min_length characters."""
    return [user["name"] for user in users if len(str(user.get("password") or "")) < int(min_length)]


class FilterModule:
    def filters(self):
        return {
            "postgresql_bad_clients": bad_clients,
            "postgresql_short_passwords": short_passwords,
        }
