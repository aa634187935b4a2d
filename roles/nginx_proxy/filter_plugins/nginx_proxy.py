"""Filters of role nginx_proxy: its checks of the users' passwords, as plain
Python with their own tests (tests/test_filter_plugins.py)."""

from __future__ import annotations

import math
import re

# The character classes a password's alphabet is counted from.
CLASSES = {"[a-z]": 26, "[A-Z]": 26, "[0-9]": 10, "[^A-Za-z0-9]": 33}


def short_passwords(users: list[dict], min_length: int) -> list[str]:
    """The names of the users whose password (none counts as empty) is
    shorter than min_length characters."""
    return [user["name"] for user in users if len(str(user.get("password") or "")) < int(min_length)]


def weak_generated(users: list[dict]) -> list[str]:
    """The names of the users marked `generated` whose password cannot hold
    128 bits: its length x log2 of the alphabet its character classes span
    (a generated secret gets a fast hash instead of bcrypt)."""
    weak = []
    for user in users:
        if not user.get("generated"):
            continue
        password = str(user.get("password") or "")
        pool = sum(size for pattern, size in CLASSES.items() if re.search(pattern, password))
        if pool == 0 or len(password) * math.log2(pool) < 128:
            weak.append(user["name"])
    return weak


class FilterModule:
    def filters(self):
        return {
            "nginx_proxy_short_passwords": short_passwords,
            "nginx_proxy_weak_generated": weak_generated,
        }
