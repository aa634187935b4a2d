"""The roles' filter plugins: the decisions taken out of Jinja, tested as
plain Python (seconds, where a playbook run takes minutes)."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import PROJECT


def plugin(role: str):
    path = PROJECT / "roles" / role / "filter_plugins" / f"{role}.py"
    spec = importlib.util.spec_from_file_location(f"{role}_filters", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stack, server, s3 = plugin("mlflow_stack"), plugin("mlflow_server"), plugin("s3_storage")
pg, proxy = plugin("postgresql"), plugin("nginx_proxy")

PORTS = {"http": 80, "https": 443, "mlflow": 5000, "postgresql": 5432, "s3": 8333}
PROXIES, SERVERS, CLIENTS = ["10.0.0.9"], ["10.0.0.1", "10.0.0.2"], ["10.0.1.0/24"]


def served(groups: list[str], external_s3: bool = False) -> dict[str, tuple[int, list[str]]]:
    services = stack.firewall_services(groups, PORTS, PROXIES, SERVERS, CLIENTS, external_s3)
    return {s["name"]: (s["port"], s["sources"]) for s in services}


def test_each_group_opens_its_port_to_the_hosts_that_need_it():
    anyone = ["0.0.0.0/0", "::/0"]
    assert served(["mlflow_proxy"]) == {"http": (80, anyone), "https": (443, anyone)}
    assert served(["mlflow_server"]) == {"mlflow": (5000, PROXIES)}
    assert served(["mlflow_db"]) == {"postgresql": (5432, SERVERS)}
    assert served(["mlflow_artifacts"]) == {"s3": (8333, SERVERS + CLIENTS)}
    assert served(["mlflow_verify_runner"]) == {}


def test_an_all_in_one_host_opens_every_port_in_a_fixed_order_and_no_s3_for_an_external_store():
    every = ["mlflow_db", "mlflow_artifacts", "mlflow_server", "mlflow_proxy"]
    assert list(served(every)) == ["http", "https", "mlflow", "postgresql", "s3"]
    assert "s3" not in served(every, external_s3=True)


def test_a_line_break_or_nul_is_named_and_any_other_printable_value_passes():
    settings = {
        "a": " p@ss:w/rd%25#q\"x\\y'z$HOME! ",
        "b": "two\nlines",
        "c": "nul\x00",
        "d": "cr\r",
        "e": "",
    }
    assert server.unsafe_env_values(settings) == ["b", "c", "d"]
    assert server.unsafe_env_values({"a": "x"}, {"HTTP_PROXY": "ok", "NOTE": "one\ntwo"}) == [
        "mlflow_server_env"
    ]
    assert server.unsafe_env_values({"a": "x"}, {"PORT": 5000}) == []


def test_old_installs_are_those_beyond_the_running_one_and_the_newest_kept():
    found = [
        {"path": "/opt/mlflow/venvs/3.0.0", "mtime": 1},
        {"path": "/opt/mlflow/venvs/3.1.0", "mtime": 2},
        {"path": "/opt/mlflow/venvs/3.17.1", "mtime": 3},
        {"path": "/opt/mlflow/venvs/3.17.2", "mtime": 0},  # running: older than the others
        {"path": "/opt/mlflow/image/3.0.0-x", "mtime": 1},
    ]
    old = server.old_versions(found, "/venvs/", "/opt/mlflow/venvs/3.17.2", 2)
    assert [item["path"] for item in old] == ["/opt/mlflow/venvs/3.0.0"]
    assert server.old_versions(found, "/venvs/", "/opt/mlflow/venvs/3.17.2", "0")[0]["path"].endswith(
        "3.17.1"
    )
    assert server.old_versions(found, "/image/", "/opt/mlflow/image/3.0.0-x", 0) == []


def test_old_images_lose_only_this_repositorys_tags_and_the_running_one_is_kept():
    images = [
        {"RepoTags": ["mlflow-vm/mlflow:3.17.2-a"], "Created": 1},  # running, oldest
        {"RepoTags": ["mlflow-vm/mlflow:3.17.1-a"], "Created": 4},
        {"RepoTags": ["mlflow-vm/mlflow:3.1.0-newer"], "Created": 3},
        {"RepoTags": ["mlflow-vm/mlflow:3.0.0-oldest", "mlflow-lab/python:3.11"], "Created": 2},
        {"RepoTags": [], "Created": 5},  # dangling
    ]
    tags = server.old_image_tags(images, "mlflow-vm/mlflow:3.17.2-a", "mlflow-vm/mlflow", 2)
    assert tags == ["mlflow-vm/mlflow:3.0.0-oldest"]
    assert server.old_image_tags(images, "mlflow-vm/mlflow:3.17.2-a", "mlflow-vm/mlf", 0) == []


STORE = {
    "url": "https://s3.example.com",
    "host": "s3.example.com",
    "port": 443,
    "api_host": "localhost",
    "bucket": "mlflow",
    "access_key": "AKIAEXAMPLE",
}
OK = {"failed": False}


@pytest.mark.parametrize(
    ("checks", "message", "expected"),
    [
        ({"DNS": {"failed": True}, "connection": {}, "TLS": {}}, "", "(DNS): s3.example.com (from https://"),
        (
            {"DNS": OK, "connection": {"failed": True}, "TLS": {}},
            "",
            "(connection): nothing answers on s3.",
        ),
        (
            {"DNS": OK, "connection": OK, "TLS": {"failed": True}},
            "bad cert",
            "(TLS): https://s3.example",
        ),
        (
            {"DNS": OK, "connection": OK, "TLS": OK},
            "NoSuchBucket",
            "(missing bucket): bucket mlflow",
        ),
        ({"DNS": OK, "connection": OK, "TLS": OK}, "AccessDenied", "(403 credentials refused)"),
        ({"DNS": OK, "connection": OK, "TLS": OK}, "SignatureDoesNotMatch", "(403 credentials"),
        (
            {"DNS": OK, "connection": OK, "TLS": {"skipped": True}},
            "boom",
            "(S3 error): Put a probe: boom",
        ),
    ],
)
def test_a_failed_probe_names_its_first_cause(checks, message, expected):
    said = s3.diagnosis({"msg": message}, checks, "Put a probe", STORE)
    assert said.startswith("S3 check failed "), said
    assert expected in said, said


def test_pg_hba_clients_must_be_addresses_or_networks_without_host_bits():
    good = ["10.0.0.5", "10.0.0.0/24", "::1", "fd00::/64", "192.168.1.7/32"]
    assert pg.bad_clients(good) == []
    assert pg.bad_clients(["10.0.0.5/24", "db.example.com", "10.0.0.0/33", "fd00::1/64"]) == [
        "10.0.0.5/24",
        "db.example.com",
        "10.0.0.0/33",
        "fd00::1/64",
    ]


@pytest.mark.parametrize("role", ["postgresql", "nginx_proxy"])
def test_short_passwords_name_their_users_and_a_missing_password_counts_as_empty(role):
    users = [
        {"name": "long", "password": "x" * 12},
        {"name": "short", "password": "x" * 11},
        {"name": "none", "password": None},
        {"name": "absent"},
        {"name": "number", "password": 123456789012},
    ]
    assert plugin(role).short_passwords(users, "12") == ["short", "none", "absent"]


def test_a_generated_secret_must_hold_128_bits_by_length_and_alphabet():
    users = [
        {"name": "person", "password": "short"},  # not generated: bcrypt, not checked here
        # 32 x log2(62) = 190 bits
        {"name": "base64", "password": "A" * 11 + "a" * 11 + "0" * 10, "generated": True},
        {"name": "hex", "password": "0123456789abcdef" * 2, "generated": True},  # 32 x log2(36) = 165
        {"name": "digits", "password": "1" * 38, "generated": True},  # 38 x log2(10) = 126
        {"name": "empty", "password": "", "generated": True},
    ]
    assert proxy.weak_generated(users) == ["digits", "empty"]
