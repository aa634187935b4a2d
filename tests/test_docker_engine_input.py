"""Bad input to role docker_engine stops the run before any change, naming the variable."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("source", ["distribution", "docker"])
def test_good_input_passes(accepts, source):
    accepts("docker_engine", {"docker_engine_source": source, "docker_engine_storage_driver": "overlay2"})


BAD = [
    ({"docker_engine_source": "snap"}, "docker_engine_source must be one of: distribution, docker"),
    ({"docker_engine_log_max_size": "20MB"}, "docker_engine_log_max_size=20MB is not a size like 20m"),
    ({"docker_engine_log_max_file": 0}, "docker_engine_log_max_file=0 must be at least 1"),
    (
        {"docker_engine_storage_driver": "Overlay 2"},
        "docker_engine_storage_driver=Overlay 2 is not a storage",
    ),
    ({"docker_engine_daemon_options": "live-restore"}, "docker_engine_daemon_options"),
    ({"docker_engine_image_store": "overlay2"}, "docker_engine_image_store must be one of: auto, classic"),
]


@pytest.fixture(scope="module")
def refused(refusals):
    """Every input of BAD in one run of the role (tests/conftest.py: refusals)."""
    return refusals("docker_engine", [case[0] for case in BAD])


@pytest.mark.parametrize(
    ("changes", "message"), BAD, ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None
)
def test_bad_input_fails_before_any_change(refused, changes, message):
    refused(changes, message)
