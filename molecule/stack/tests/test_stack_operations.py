"""Day-2 runs on the converged stack: each playbook alone, role tags, a
restore with servers in both modes, a rolling restart and a migration that
fails and is rolled back (which migrates again), both counted from a client
that keeps logging (runs after test_stack.py)."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
import requests
from labtest.front_door import access_log, access_log_length, ui_asset
from labtest.hosts import AS_PROXY, program, upstream, uvicorn_workers
from labtest.lab import changed, changed_tasks, q
from labtest.stack import bucket_keys, psql
from labtest.traffic import Traffic

BACKUP_DIR = "/var/backups/postgresql"


@pytest.mark.parametrize(
    "playbook",
    [
        "playbooks/firewall.yml",
        "playbooks/postgresql.yml",
        "playbooks/s3_storage.yml",
        "playbooks/mlflow_verify.yml",
    ],
)
def test_each_playbook_alone_changes_nothing(lab, playbook):
    """Alone, a playbook gets the same settings as site.yml (no value falls
    back to a default because another play did not run). The runs of
    playbooks/mlflow_server.yml and playbooks/nginx_proxy.yml alone are
    checked the same way, by the exact changes of the tests that run them
    (the gc timer moving back; a removed user)."""
    assert set(changed(lab.playbook(playbook))) == {0}


def started(lab) -> tuple[str, str]:
    """When each server last started: the systemd unit (stk-ml1) and the container (stk-ml2)."""
    return (
        lab.host("stk-ml1").check_output("systemctl show -p InvocationID --value mlflow-server"),
        lab.host("stk-ml2").check_output("docker inspect -f '{{.State.StartedAt}}' mlflow-server"),
    )


def server_hosts(lab) -> list[str]:
    return lab.group("mlflow_server")


SCHEMA_FILE = "/var/lib/mlflow/schema-version"


def retried_since(lab, line: int) -> list[str]:
    """Access log lines after `line` that nginx sent to more than one server
    (upstream=A:5000, B:5000): the first one refused or failed."""
    return [entry for entry in access_log(lab.host("stk-proxy"), line) if re.search(r"upstream=\S+, ", entry)]


ENTRYPOINT = "/opt/mlflow/venvs/{version}/bin/mlflow-entrypoint"

UNDO_LAST_MIGRATION = program("undo_last_migration")


def ran(run, task: str) -> int:
    """How many times a run reached the task (its name's beginning)."""
    return run.stdout.count(f"TASK [{task}")


def running(lab) -> str:
    """The MLflow version the servers run (the inventory's, between tests)."""
    (version,) = versions(lab)
    return version


def entrypoint(lab) -> tuple[str, str]:
    """The venv's Python and entry point of the version stk-ml1 runs."""
    path = ENTRYPOINT.format(version=running(lab))
    return f"{os.path.dirname(path)}/python", path


def schema(lab) -> dict:
    """Where the databases stand for the version stk-ml1 runs (its entry point)."""
    python, path = entrypoint(lab)
    return json.loads(lab.host("stk-ml1").check_output(f"{python} {path} schema"))


def versions(lab) -> set[str]:
    """What each server answers on /version (port 5000, the stack's default),
    asked from the proxy, the only host let in."""
    ask = program("get")
    return {
        lab.host("stk-proxy").check_output(f"{AS_PROXY} python3 -c {q(ask)} {upstream(lab, host)}/version")
        for host in server_hosts(lab)
    }


def test_a_new_server_joins_a_run_with_role_tags_without_stopping_the_others(lab):
    """stk-ml2 as a new server (no container, no record) in a fleet already on
    this version, joined by `site.yml --tags mlflow_server,nginx_proxy`: it
    starts, and no other server stops or migrates. Exactly the new server's
    tasks change: tags skip plays' tasks, never the settings (the two roles
    whose settings come most from other hosts, the servers' stores and the
    proxy's upstreams, get what a full run gives them, or they would change)."""
    lab.host("stk-ml2").check_output(f"docker rm -f mlflow-server && rm -f {SCHEMA_FILE}")
    invocation = "systemctl show -p InvocationID --value mlflow-server"
    before = lab.host("stk-ml1").check_output(invocation)
    run = lab.playbook("site.yml", "--tags", "mlflow_server,nginx_proxy")
    assert run.returncode == 0, run.stdout[-4000:]
    assert "Migrate the schemas" not in run.stdout
    assert lab.host("stk-ml1").check_output(invocation) == before, "a server was restarted for a joining one"
    expected = {
        *(
            (f"mlflow_server : {task}", "stk-ml2")
            for task in (
                "Plan the MLflow container (what would change)",
                "Run the MLflow container",
                "Record the schema version",
            )
        ),
        *(
            (f"nginx_proxy : {task}", "stk-ml2 -> stk-proxy")
            for task in ("Mark the server down in the upstream, or up again", "Reload nginx")
        ),
    }
    assert changed_tasks(run) == expected, changed_tasks(run) ^ expected
    assert lab.host("stk-ml2").check_output("docker inspect -f '{{.State.Running}}' mlflow-server") == "true"


def test_a_failed_migration_stops_with_the_rollback_command_which_works(lab):
    """The store's last migration undone for real, so the next run must
    migrate; and the migration made to fail (the database hides MLflow's
    tables from its role). The run backs up once, stops every server (both
    modes) and migrates once, which fails: it stops with the backup and the
    exact rollback command. That command restores the backup (a change made
    after it is undone), finds the restored schema behind, backs up and
    migrates once, starts the servers and verifies. Meanwhile a client that
    keeps logging gets 503 with Retry-After from the proxy while no server
    runs, never 502, then 200.

    No request reaches the servers from the undo until they stop: a server
    worker that opens its store for the first time finds the undone
    migration's tables missing and, as MLflow does, migrates the database
    itself (the lab's warm workers do not; which worker a request reaches is
    chance); and the hidden tables fail the requests of any connection the
    servers open meanwhile (500s). A fleet on an older version, the real
    case, has all its tables and a database that shows them."""
    run_id = psql(lab, "SELECT run_uuid FROM runs WHERE status = 'FINISHED' ORDER BY start_time DESC LIMIT 1")
    head = schema(lab)["store"]["head"]
    python, path = entrypoint(lab)
    traffic = Traffic(lab)  # its experiment and run, made before the undo
    asset = ui_asset(traffic.get("/").text)
    script = traffic.get(asset)
    assert script.status_code == 200, script.status_code
    lab.host("stk-ml1").check_output(f"{python} -c {q(UNDO_LAST_MIGRATION)} {path}")
    behind = schema(lab)["store"]
    assert behind["current"] != head, behind
    assert behind["known"], behind

    break_it = "ALTER ROLE mlflow IN DATABASE mlflow SET search_path = nowhere"
    psql(lab, break_it)
    try:
        try:
            run = lab.playbook("playbooks/mlflow_server.yml")
        finally:
            fix = "ALTER ROLE mlflow IN DATABASE mlflow RESET search_path"
            psql(lab, fix)
        assert run.returncode != 0
        assert "The schema migration to MLflow" in run.stdout, run.stdout[-4000:]
        assert ran(run, "mlflow_server : Migrate the schemas with") == 1
        assert ran(run, "postgresql : Dump the databases now") == 1, "not one backup"
        command = re.search(
            r"ansible-playbook playbooks/rollback.yml -i (\S+)\s+-e mlflow_rollback_backups=(\S+)", run.stdout
        )
        assert command, run.stdout[-4000:]
        assert command.group(1) == lab.inventory
        backups = command.group(2)
        assert lab.host("stk-db").file(backups.split(",")[0]).is_file
        # Every server of the fleet stopped, in both modes.
        assert lab.host("stk-ml1").run("systemctl is-active mlflow-server").stdout.strip() != "active"
        ml2 = lab.host("stk-ml2").run("docker inspect -f '{{.State.Running}}' mlflow-server")
        assert ml2.stdout.strip() != "true", "stk-ml2's container still runs"
        # The proxy still serves the UI's assets it keeps (a page open in a
        # browser goes on loading its views); MLflow's data answers 503.
        kept = traffic.get(asset)
        assert (kept.status_code, kept.content) == (200, script.content), kept.status_code
        assert traffic.get("/version").status_code == 503
        # A change made after the backup: only a restore undoes it.
        psql(lab, f"UPDATE runs SET status = 'KILLED' WHERE run_uuid = '{run_id}'")

        traffic.start()
        rollback = lab.playbook("playbooks/rollback.yml", mlflow_rollback_backups=backups)
    finally:
        traffic.stop()
    assert rollback.returncode == 0, rollback.stdout[-4000:] + rollback.stderr[-2000:]
    assert "mlflow_verify : " in rollback.stdout
    assert psql(lab, f"SELECT status FROM runs WHERE run_uuid = '{run_id}'") == "FINISHED", "not restored"
    # The restored schema is behind: one fresh backup, one migration.
    assert ran(rollback, "mlflow_server : Migrate the schemas with") == 1
    assert ran(rollback, "postgresql : Dump the databases now") == 1
    assert psql(lab, "SELECT version_num FROM alembic_version") == head
    log = lab.host("stk-ml1").file("/var/lib/mlflow/migrations.log").content_string.splitlines()[-1]
    assert f"revisions={behind['current']}->{head}" in log, log
    print("rollback:", traffic.summary())
    assert set(traffic.statuses) <= {200, 503}, traffic.summary()
    assert traffic.statuses[503] > 0, "no server was stopped: " + traffic.summary()
    assert traffic.answers[-1][1] == 200, traffic.summary()
    assert {retry for _, status, retry in traffic.answers if status == 503} == {"10"}
    assert traffic.without_nosniff == 0


def collect_garbage(lab, gc_host: str, other: str) -> None:
    """Two runs with an artifact each, both deleted; one deletion is dated
    31 days back. The gc timer's service on gc_host removes that run and its
    objects in S3, and keeps the other (younger than mlflow_server_gc_older_than)."""
    traffic = Traffic(lab)
    experiment = traffic.post("/experiments/create", {"name": f"gc-{time.time_ns()}"}).json()["experiment_id"]
    runs = []
    for _ in range(2):
        run_id = traffic.post("/runs/create", {"experiment_id": experiment}).json()["run"]["info"]["run_id"]
        upload = requests.put(
            f"{traffic.url.rsplit('/', 1)[0]}/mlflow-artifacts/artifacts/"
            f"{experiment}/{run_id}/artifacts/note.txt",
            data=b"to be collected",
            headers={"Host": traffic.host},
            auth=traffic.auth,
            verify=False,
            timeout=60,
        )
        assert upload.status_code == 200, upload.text
        assert traffic.post("/runs/delete", {"run_id": run_id}).status_code == 200
        runs.append(run_id)
    old, young = runs
    psql(lab, f"UPDATE runs SET deleted_time = deleted_time - 31 * 86400000::bigint WHERE run_uuid = '{old}'")
    assert bucket_keys(lab, f"artifacts/{experiment}/{old}/")

    assert lab.host(gc_host).check_output("systemctl is-enabled mlflow-gc.timer") == "enabled"
    assert not lab.host(other).file("/etc/systemd/system/mlflow-gc.timer").exists, "gc on two servers"
    lab.host(gc_host).check_output("systemctl start mlflow-gc.service")

    assert psql(lab, f"SELECT count(*) FROM runs WHERE run_uuid = '{old}'") == "0"
    assert bucket_keys(lab, f"artifacts/{experiment}/{old}/") == set()
    assert psql(lab, f"SELECT lifecycle_stage FROM runs WHERE run_uuid = '{young}'") == "deleted"
    assert bucket_keys(lab, f"artifacts/{experiment}/{young}/") == {
        f"artifacts/{experiment}/{young}/artifacts/note.txt"
    }


def test_gc_removes_runs_deleted_long_ago_with_their_artifacts(lab):
    """On the fleet's first server, stk-ml1: systemd mode, the venv."""
    collect_garbage(lab, "stk-ml1", "stk-ml2")


def test_gc_in_docker_mode_runs_in_the_container(lab):
    """With stk-ml2 as the gc host, the timer moves there and runs gc in the
    running container."""
    moved = lab.playbook(
        "playbooks/mlflow_server.yml", "--tags", "mlflow_server_gc", mlflow_server_gc_host="stk-ml2"
    )
    try:
        assert moved.returncode == 0, moved.stdout[-4000:]
        collect_garbage(lab, "stk-ml2", "stk-ml1")
    finally:
        # Alone and untagged: exactly the timer's move back changes (the
        # playbook gets what site.yml gives it).
        back = lab.playbook("playbooks/mlflow_server.yml")
        assert back.returncode == 0, back.stdout[-4000:]
    expected = {
        ("mlflow_server : Install the garbage collection service and timer", "stk-ml1"),
        ("mlflow_server : Start the timer and enable it at boot", "stk-ml1"),
        ("mlflow_server : Stop the timer and disable it", "stk-ml2"),
        ("mlflow_server : Remove the garbage collection units", "stk-ml2"),
    }
    assert changed_tasks(back) == expected, changed_tasks(back) ^ expected


def test_check_mode_stops_a_fresh_host_at_once_after_the_input_checks(lab, tmp_path):
    """stk-outsider, never set up, as a second proxy: check mode stops it at
    its first play, after the stack checks and before any role, with its
    name; it never gets half-way. (--limit: check mode on hosts set up is
    tried on the all-in-one host, scenario default: 174 s there, 241 s here.)"""
    extra = tmp_path / "outsider.yml"
    extra.write_text("mlflow_proxy:\n  hosts:\n    stk-outsider:\n")
    run = lab.playbook("site.yml", "--check", "--diff", "-i", str(extra), "--limit", "stk-outsider")
    assert run.returncode != 0
    assert "and stk-outsider never was (no /var/lib/mlflow-stack/converged)" in run.stdout, run.stdout[-3000:]
    blocks = run.stdout.split("\nTASK [")
    tasks = [block.split("]")[0] for block in blocks if "[stk-outsider]" in block]
    assert tasks[-1] == "mlflow_stack : Check mode needs a host set up once", tasks
    recap = re.search(r"stk-outsider\s+: ok=\d+\s+changed=(\d+).*?failed=(\d+)", run.stdout)
    assert recap.groups() == ("0", "1"), recap


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


# The last test on Debian: it leaves the servers on 3.17.1 with 3 workers
# (the next converge puts the inventory's version and workers back).
def test_a_version_bump_and_a_config_change_roll_over_the_servers_without_a_failed_request(lab):
    """3.17.2 -> 3.17.1 with 3 workers: the same alembic head, so no server
    stops for a migration. The roll takes each server in turn out of the
    proxy, restarts it, waits for its health and puts it back, while a client
    keeps logging: every request is answered 200, and none was retried on the
    other server (nginx would hide a server restarting but not drained: it
    retries a refused request; a drained server is never tried).

    Then the old versions: with older venvs planted on stk-ml1 and older
    images on stk-ml2, the run keeps the running version and the
    mlflow_server_keep_versions newest others (here: those installed before
    and one more) and removes the rest (only this role's image tags)."""
    version, workers = "3.17.1", 3
    inventory = (running(lab), lab.var("stk-ml1", "mlflow_server_workers"))
    assert inventory[0] != version, f"the servers already run {version}: converge the lab again first"
    assert inventory[1] != workers, inventory
    ml1, ml2 = lab.host("stk-ml1"), lab.host("stk-ml2")
    installed = set(ml1.check_output("ls /opt/mlflow/venvs").split())
    for days, old in ((3, "3.0.0"), (2, "3.1.0")):
        venv = f"/opt/mlflow/venvs/{old}"
        ml1.check_output(f"mkdir -p {venv} && touch -d '{days} days ago' {venv}")
    # The oldest: the base image under this role's repository; a newer one built now.
    ml2.check_output("docker tag mlflow-lab/python:3.11 mlflow-vm/mlflow:3.0.0-oldest")
    ml2.check_output(
        "printf 'FROM mlflow-lab/python:3.11\\nLABEL newer=1\\n'"
        " | docker build -q -t mlflow-vm/mlflow:3.1.0-newer -"
    )
    image = ml2.check_output("docker inspect -f '{{.Config.Image}}' mlflow-server")
    before = started(lab)
    logged = access_log_length(lab.host("stk-proxy"))
    try:
        with Traffic(lab) as traffic:
            run = lab.playbook(
                "playbooks/mlflow_server.yml",
                mlflow_stack_mlflow_version=version,
                mlflow_server_workers=workers,
                mlflow_server_keep_versions=len(installed - {version}) + 1,
            )
        assert run.returncode == 0, run.stdout[-4000:]
        print(f"roll to {version} with {workers} workers:", traffic.summary())
        assert "Migrate the schemas" not in run.stdout
        assert "TASK [postgresql : Dump the databases now" not in run.stdout
        assert all(a != b for a, b in zip(started(lab), before, strict=True)), "a server was not restarted"
        assert versions(lab) == {version}
        assert {uvicorn_workers(lab.host(h)) for h in server_hosts(lab)} == {workers}
        assert len(traffic.answers) > 50, traffic.summary()
        assert traffic.failed() == [], traffic.summary()
        assert retried_since(lab, logged) == [], "requests sent to a server that was not drained"

        assert set(ml1.check_output("ls /opt/mlflow/venvs").split()) == installed | {version, "3.1.0"}
        images = ml2.check_output("docker images --format '{{.Repository}}:{{.Tag}}'").split()
        assert image in images, images
        assert "mlflow-vm/mlflow:3.1.0-newer" in images, images
        assert "mlflow-vm/mlflow:3.0.0-oldest" not in images, images
        assert "mlflow-lab/python:3.11" in images, "a base image lost its own name"
    finally:
        ml1.check_output("rm -rf /opt/mlflow/venvs/3.0.0 /opt/mlflow/venvs/3.1.0")
        ml2.run("docker rmi mlflow-vm/mlflow:3.0.0-oldest mlflow-vm/mlflow:3.1.0-newer")
