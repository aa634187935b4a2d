"""The stack settings: one place, handed to the roles by playbooks/vars/wiring.yml,
and the roles read no other role's variables."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from conftest import PROJECT

ROLES = sorted(p.name for p in (PROJECT / "roles").iterdir() if (p / "meta/argument_specs.yml").exists())
WIRING = yaml.safe_load((PROJECT / "playbooks/vars/wiring.yml").read_text())


def options(role: str) -> set[str]:
    specs = yaml.safe_load((PROJECT / "roles" / role / "meta/argument_specs.yml").read_text())[
        "argument_specs"
    ]
    return {name for entry in specs.values() for name in entry.get("options", {})}


def owner(variable: str) -> str:
    return max((r for r in ROLES if variable.startswith(r + "_")), key=len)


def test_wiring_sets_documented_role_variables():
    """A typo in wiring.yml would wire nothing: every name is an option of its
    role (or one of the file's own __mlflow_stack_ helpers)."""
    wired = [name for name in WIRING if not name.startswith("__mlflow_stack_")]
    unknown = [name for name in wired if name not in options(owner(name))]
    assert not unknown, unknown


def code(path):
    """A YAML file without its comments."""
    return "\n".join(
        line.split(" #")[0] for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
    )


@pytest.mark.parametrize("role", [r for r in ROLES if r != "mlflow_stack"])
def test_role_defaults_and_vars_read_no_other_role(role):
    """Reading one role's defaults tells everything it depends on."""
    others = [r for r in ROLES if r != role and not role.startswith(r + "_")]
    for part in ("defaults", "vars"):
        path = PROJECT / "roles" / role / part / "main.yml"
        if not path.exists():
            continue
        text = code(path)
        assert "hostvars[" not in text, f"{path}: reads another host's variables"
        foreign = sorted({m for r in others for m in re.findall(rf"\b{r}_[a-z0-9_]+", text)})
        assert not foreign, f"{path}: reads {foreign}"


@pytest.fixture
def run(tmp_path, ansible_env):
    """A playbook in check mode against the controller, as every group's only
    host: (exit code, output on one line)."""

    def check(playbook: str, *extra: str, groups=STACK_GROUPS) -> tuple[int, str]:
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(
            yaml.safe_dump(
                {
                    "all": {
                        "vars": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                        },
                        "children": {g: {"hosts": {"localhost": None}} for g in groups},
                    }
                }
            )
        )
        result = subprocess.run(
            ["ansible-playbook", "-i", str(inventory), "--check", playbook, *extra],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=False,
            env=ansible_env,
        )
        return result.returncode, " ".join((result.stdout + result.stderr).split())

    return check


def test_an_external_database_needs_its_ca(run):
    """No mlflow_db host: the servers check the database's certificate
    (verify-full), so the CA file is asked for before anything changes."""
    external = ("mlflow_artifacts", "mlflow_server", "mlflow_proxy")
    rc, out = run(
        "playbooks/mlflow_server.yml",
        *extra_vars(SECRETS),
        "-e",
        "mlflow_stack_db_host=db.example.com",
        groups=external,
    )
    assert rc != 0, out
    assert "mlflow_stack_db_ca_file is not set" in out, out
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0\s", out), out


SECRETS = {
    "mlflow_stack_db_password": "db-password-0123",
    "mlflow_stack_s3_access_key": "KEY0123",
    "mlflow_stack_s3_secret_key": "secret-key-0123456",
}


STACK_GROUPS = ("mlflow_db", "mlflow_artifacts", "mlflow_server", "mlflow_proxy")


def extra_vars(values: dict[str, str]) -> list[str]:
    return [arg for name, value in values.items() for arg in ("-e", f"{name}={value}")]


@pytest.mark.parametrize(
    ("playbook", "variable", "setting"),
    [
        ("playbooks/postgresql.yml", "postgresql_port=5433", "mlflow_stack_db_port"),
        ("playbooks/nginx_proxy.yml", "nginx_proxy_auth_mode=mlflow", "mlflow_stack_auth_mode"),
        ("playbooks/mlflow_server.yml", "mlflow_server_version=3.16.1", "mlflow_stack_mlflow_version"),
        ("playbooks/s3_storage.yml", "s3_storage_secret_key=other-secret-0123", "mlflow_stack_s3_secret_key"),
    ],
)
def test_a_wired_role_variable_is_refused_before_anything_changes(run, playbook, variable, setting):
    rc, out = run(playbook, *extra_vars(SECRETS), "-e", variable)
    name = variable.split("=")[0]
    assert rc != 0, out
    assert f"{name} is set by playbooks/vars/wiring.yml from {setting}" in out, out
    assert re.findall(
        r"TASK \[([^\]]+)\]", out.split("fatal:")[0] if "fatal:" in out else out.split("failed:")[0]
    )[-1] == ("mlflow_stack : Check the stack settings")
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0\s", out), out
    assert "other-secret-0123" not in out


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("mlflow_stack_db_password", "mlflow_stack_db_password is not set"),
        (
            "mlflow_stack_s3_secret_key",
            "mlflow_stack_s3_access_key and mlflow_stack_s3_secret_key are required",
        ),
    ],
)
def test_a_missing_stack_secret_is_named(run, missing, message):
    present = {name: value for name, value in SECRETS.items() if name != missing}
    rc, out = run("playbooks/postgresql.yml", *extra_vars(present))
    assert rc != 0, out
    assert message in out, out
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0\s", out), out


def test_auth_mode_mlflow_needs_the_admin_password(run):
    rc, out = run("playbooks/postgresql.yml", *extra_vars(SECRETS), "-e", "mlflow_stack_auth_mode=mlflow")
    assert rc != 0, out
    assert "mlflow_stack_auth_admin_password is not set" in out, out


@pytest.mark.parametrize("password", ["two\nlines-password", "nul\x00in-the-middle", "carriage\rreturn-here"])
def test_a_password_that_cannot_work_is_refused_first(run, tmp_path, password):
    """A line break or NUL would be cut in MLflow's environment file (in the
    first play, before the database password changes anywhere)."""
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({**SECRETS, "mlflow_stack_db_password": password}))
    rc, out = run("site.yml", "-e", f"@{secrets}")
    assert rc != 0, out
    assert "mlflow_stack_db_password: a line break or NUL cannot be a password here" in out, out
    assert "PLAY [Host firewalls" in out, out
    assert "PLAY [PostgreSQL" not in out, out
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0\s", out), out
