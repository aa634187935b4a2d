"""Fixtures shared by every scenario's testinfra verifier; the helpers are in
the labtest package beside this file (one job per module).

Molecule runs the verifier with MOLECULE_INVENTORY_FILE and
MOLECULE_EPHEMERAL_DIRECTORY set; hosts are reached through that inventory.
"""

from __future__ import annotations

import pytest
from labtest.lab import Lab, scenario


@pytest.fixture(scope="session")
def lab() -> Lab:
    return scenario()
