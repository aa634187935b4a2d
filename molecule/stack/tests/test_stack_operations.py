"""Day-2 runs on the converged stack: each playbook and role tag alone, and a
restore with servers in both modes (runs after test_stack.py)."""

from __future__ import annotations

import re

import pytest
from conftest import q

BACKUP_DIR = "/var/backups/postgresql"


def changed(result) -> list[int]:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    recap = result.stdout[result.stdout.rindex("PLAY RECAP") :]
    counts = [int(n) for n in re.findall(r"changed=(\d+)", recap)]
    assert counts, recap
    return counts


@pytest.mark.parametrize(
    "playbook",
    [
        "playbooks/firewall.yml",
        "playbooks/postgresql.yml",
        "playbooks/s3_storage.yml",
        "playbooks/mlflow_server.yml",
        "playbooks/nginx_proxy.yml",
        "playbooks/mlflow_verify.yml",
    ],
)
def test_each_playbook_alone_changes_nothing(lab, playbook):
    """Alone, a playbook gets the same settings as site.yml (no value falls
    back to a default because another play did not run)."""
    assert set(changed(lab.playbook(playbook))) == {0}


@pytest.mark.parametrize("tag", ["mlflow_server", "nginx_proxy"])
def test_site_with_one_role_tag_changes_nothing(lab, tag):
    """Tags skip plays' tasks, never the settings: the role gets what a full run gives it."""
    assert set(changed(lab.playbook("site.yml", "--tags", tag))) == {0}


def started(lab) -> tuple[str, str]:
    """When each server last started: the systemd unit (stk-ml1) and the container (stk-ml2)."""
    return (
        lab.host("stk-ml1").check_output("systemctl show -p InvocationID --value mlflow-server"),
        lab.host("stk-ml2").check_output("docker inspect -f '{{.State.StartedAt}}' mlflow-server"),
    )


def psql(lab, sql: str) -> str:
    return lab.host("stk-db").check_output(f"runuser -u postgres -- psql -X -d mlflow -Atc {q(sql)}")


def test_restore_stops_and_restarts_servers_in_both_modes(lab):
    run_id = psql(lab, "SELECT run_uuid FROM runs WHERE status = 'FINISHED' ORDER BY start_time DESC LIMIT 1")
    backup = lab.playbook("playbooks/postgresql-backup.yml")
    assert backup.returncode == 0, backup.stdout[-3000:]
    dump = lab.host("stk-db").check_output(f"ls -1t {BACKUP_DIR}/mlflow/*.dump | head -1")
    psql(lab, f"UPDATE runs SET status = 'FAILED' WHERE run_uuid = '{run_id}'")
    before = started(lab)

    restore = lab.playbook(
        "playbooks/postgresql-restore.yml", postgresql_restore_file=dump, postgresql_restore_database="mlflow"
    )
    assert restore.returncode == 0, restore.stdout[-4000:] + restore.stderr[-2000:]
    after = started(lab)
    assert after[0] != before[0], "the systemd-mode server was not stopped and started"
    assert after[1] != before[1], "the docker-mode server was not stopped and started"
    assert psql(lab, f"SELECT status FROM runs WHERE run_uuid = '{run_id}'") == "FINISHED"
    assert lab.host("stk-ml1").check_output("systemctl is-active mlflow-server") == "active"
    health = lab.host("stk-ml2").check_output("docker inspect -f '{{.State.Health.Status}}' mlflow-server")
    assert health in ("healthy", "starting")


def test_restore_of_a_missing_dump_stops_nothing(lab):
    before = started(lab)
    restore = lab.playbook(
        "playbooks/postgresql-restore.yml",
        postgresql_restore_file=f"{BACKUP_DIR}/mlflow/no-such.dump",
        postgresql_restore_database="mlflow",
    )
    assert restore.returncode != 0
    assert "is not a file on stk-db" in restore.stdout
    assert started(lab) == before, "a server was stopped for a restore that could not happen"
