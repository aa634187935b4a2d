"""Behaviour of the postgresql role (scenario molecule/postgresql)."""

from __future__ import annotations

import pytest
from labtest.lab import q, scenario

PORT = int(scenario().var("pg-db", "mlflow_stack_db_port"))
BACKUP_DIR = "/var/backups/postgresql"


@pytest.fixture(scope="module")
def db(lab):
    return lab.host("pg-db")


@pytest.fixture(scope="module")
def client(lab):
    return lab.host("pg-client")


@pytest.fixture(scope="module")
def password(lab):
    return lab.secret("pg_password")


@pytest.fixture(scope="module")
def db_ip(lab):
    return lab.ip("pg-db")


def psql(host, sql, *, server="pg-db", user="mlflow", password="", database="mlflow"):
    """Run SQL over TCP as a client would; returns the command result."""
    return host.run(
        f"PGPASSWORD={q(password)} PGCONNECT_TIMEOUT=5 psql -X -h {q(server)} -p {PORT} "
        f"-U {q(user)} -d {q(database)} -v ON_ERROR_STOP=1 -Atc {q(sql)}"
    )


def admin(db, sql, database="postgres"):
    """Run SQL as the postgres superuser over the local socket."""
    return db.check_output(f"runuser -u postgres -- psql -X -p {PORT} -d {q(database)} -Atc {q(sql)}")


def test_service_active_and_enabled(db):
    version = db.check_output("pg_lsclusters --no-header").split()[0]
    service = db.service(f"postgresql@{version}-main")
    assert service.is_running
    assert service.is_enabled


def test_listens_only_where_configured(db, db_ip):
    sockets = {s for s in db.socket.get_listening_sockets() if s.startswith("tcp")}
    assert {s for s in sockets if s.endswith(f":{PORT}")} == {
        f"tcp://127.0.0.1:{PORT}",
        f"tcp://{db_ip}:{PORT}",
    }
    assert not [s for s in sockets if s.endswith(":5432")], "default port must not be open"


def test_allowed_client_logs_in_with_password(client, password):
    result = psql(client, "SELECT current_user || '@' || current_database()", password=password)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "mlflow@mlflow"


def test_allowed_client_reaches_second_database(client, password):
    result = psql(client, "SELECT current_database()", password=password, database="mlflow_auth")
    assert result.rc == 0, result.stderr


def test_wrong_password_refused(client, password):
    result = psql(client, "SELECT 1", password=password + "x")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


def test_address_not_allowed_refused(db, db_ip, password):
    # The db host's own address is not a client: rejected even with the right password.
    result = psql(db, "SELECT 1", server=db_ip, password=password)
    assert result.rc != 0
    assert "pg_hba.conf rejects connection" in result.stderr


@pytest.mark.parametrize(("user", "database"), [("postgres", "postgres"), ("mlflow", "postgres")])
def test_other_roles_and_databases_refused(client, password, user, database):
    result = psql(client, "SELECT 1", user=user, database=database, password=password)
    assert result.rc != 0
    assert "pg_hba.conf rejects connection" in result.stderr


def test_password_stored_as_scram(db):
    verifier = admin(db, "SELECT rolpassword FROM pg_authid WHERE rolname = 'mlflow'")
    assert verifier.startswith("SCRAM-SHA-256$4096:")


def test_only_the_owner_may_connect(db):
    acl = admin(db, "SELECT datacl FROM pg_database WHERE datname = 'mlflow'")
    # NULL (printed as "") is the built-in default, under which PUBLIC may connect.
    assert acl, "no ACL on the database: PUBLIC keeps its default CONNECT and TEMP rights"
    entries = acl.strip("{}").split(",")
    assert not [e for e in entries if e.startswith("=")], f"PUBLIC still has rights: {acl}"
    assert admin(db, "SELECT has_database_privilege('public', 'mlflow', 'CONNECT')") == "f"


def test_database_is_utf8(db):
    row = admin(
        db, "SELECT pg_encoding_to_char(encoding), datcollate FROM pg_database WHERE datname = 'mlflow'"
    )
    assert row == "UTF8|C.UTF-8"


def setting_mb(db, name):
    value, unit = admin(db, f"SELECT setting, unit FROM pg_settings WHERE name = '{name}'").split("|")
    factor = {"8kB": 8 / 1024, "kB": 1 / 1024, "MB": 1}[unit]
    return round(int(value) * factor)


def test_memory_settings(db):
    ram_mb = int(db.file("/proc/meminfo").content_string.split()[1]) // 1024
    assert setting_mb(db, "shared_buffers") == 64  # override
    assert setting_mb(db, "effective_cache_size") == int(ram_mb * 0.75)  # derived from RAM
    assert setting_mb(db, "maintenance_work_mem") == min(ram_mb // 16, 2048)


def test_connections_sized_for_mlflow(db):
    # 1 MLflow server (the client group) x 3 workers x 40 connections + 20
    assert admin(db, "SHOW max_connections") == "140"


def test_extra_settings(db):
    assert admin(db, "SHOW log_min_duration_statement") == "500ms"
    assert admin(db, "SHOW password_encryption") == "scram-sha-256"


def test_backup_timer_scheduled(db):
    timer = db.service("postgresql-backup.timer")
    assert timer.is_enabled
    assert timer.is_running
    assert "03:15:00" in db.check_output("systemctl show -p TimersCalendar postgresql-backup.timer")


@pytest.fixture(scope="module")
def rows(client, password):
    sql = (
        "DROP TABLE IF EXISTS canary; "
        "CREATE TABLE canary AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 1000) g; "
        "SELECT count(*) || ':' || md5(string_agg(val, '' ORDER BY id)) FROM canary"
    )
    result = psql(client, sql, password=password)
    assert result.rc == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def newest_dump(db, database="mlflow"):
    return db.check_output(f"ls -1 {BACKUP_DIR}/{database}/*.dump | sort | tail -n 1")


def test_backup_restores_into_scratch_database(db, rows):
    db.check_output("systemctl start postgresql-backup.service")
    dump = newest_dump(db)
    assert db.file(dump).user == "postgres"
    assert db.file(dump).mode == 0o600
    admin(db, "DROP DATABASE IF EXISTS scratch")
    admin(db, "CREATE DATABASE scratch")
    db.check_output(f"runuser -u postgres -- pg_restore -p {PORT} --no-owner -d scratch {q(dump)}")
    restored = admin(
        db, "SELECT count(*) || ':' || md5(string_agg(val, '' ORDER BY id)) FROM canary", "scratch"
    )
    admin(db, "DROP DATABASE scratch")
    assert restored == rows


def test_backup_retention_keeps_newest(db):
    for _ in range(4):
        db.check_output("systemctl start postgresql-backup.service")
    for database in ("mlflow", "mlflow_auth"):
        dumps = db.check_output(f"ls -1 {BACKUP_DIR}/{database}").split()
        assert len(dumps) == 3, dumps


def test_backup_and_restore_playbooks(lab, db, client, password, rows):
    before = set(db.check_output(f"ls -1 {BACKUP_DIR}/mlflow").split())
    backup = lab.playbook("playbooks/postgresql-backup.yml")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    dump = newest_dump(db)
    assert dump.rsplit("/", 1)[1] not in before, "the on-demand backup wrote no new dump"

    # Lose data, then restore it from the dump.
    assert psql(client, "DELETE FROM canary WHERE id > 10", password=password).rc == 0
    restore = lab.playbook(
        "playbooks/postgresql-restore.yml",
        postgresql_restore_file=dump,
        postgresql_restore_database="mlflow",
    )
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert "Its previous content is in" in restore.stdout
    result = psql(
        client,
        "SELECT count(*) || ':' || md5(string_agg(val, '' ORDER BY id)) FROM canary",
        password=password,
    )
    assert result.stdout.strip() == rows


# Planted by whoever holds the MLflow role's password: a check constraint
# that tries to make that role a superuser for each row it checks, as a
# restore loads the rows. (Index expressions would not do: PostgreSQL builds
# indexes as the table's owner.)
PLANTED = """
CREATE OR REPLACE FUNCTION planted(v int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    EXECUTE 'ALTER ROLE mlflow SUPERUSER';
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RETURN true;
END $$;
DROP TABLE IF EXISTS planted;
CREATE TABLE planted (v int CHECK (planted(v)));
INSERT INTO planted VALUES (1);
"""


def test_one_restore_command_restores_both_databases_as_their_owner(lab, db, client, password):
    """MLflow's database and its auth app's, from the dumps of one backup, in
    one run of the restore playbook (postgresql_restore_files). The MLflow
    role planted code that runs during a restore: it runs with that role's
    rights (as the superuser, the role would come out a superuser). A
    database owned by a superuser is refused."""

    def local(database: str, sql: str) -> str:
        return db.check_output(
            f"runuser -u postgres -- psql -X -p {PORT} -d {database} -v ON_ERROR_STOP=1 -Atc {q(sql)}"
        )

    for database in ("mlflow", "mlflow_auth"):
        local(database, "DROP TABLE IF EXISTS restore_probe; CREATE TABLE restore_probe (v int)")
        local(database, "ALTER TABLE restore_probe OWNER TO mlflow; INSERT INTO restore_probe VALUES (1)")
    planted = psql(client, PLANTED, password=password)
    assert planted.rc == 0, planted.stderr
    backup = lab.playbook("playbooks/postgresql-backup.yml")
    assert backup.returncode == 0, backup.stdout[-3000:]
    dumps = [newest_dump(db, database) for database in ("mlflow", "mlflow_auth")]
    for database in ("mlflow", "mlflow_auth"):
        local(database, "UPDATE restore_probe SET v = 2")
    try:
        restore = lab.playbook("playbooks/postgresql-restore.yml", postgresql_restore_files=",".join(dumps))
        superuser = local("postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = 'mlflow'")
    finally:
        local("postgres", "ALTER ROLE mlflow NOSUPERUSER")
        local("mlflow", "DROP TABLE IF EXISTS planted; DROP FUNCTION IF EXISTS planted(int)")
    assert restore.returncode == 0, restore.stdout[-3000:] + restore.stderr[-2000:]
    assert [local(database, "SELECT v FROM restore_probe") for database in ("mlflow", "mlflow_auth")] == [
        "1",
        "1",
    ]
    assert superuser == "f", "the dump's code ran as the superuser"

    refused = lab.playbook(
        "playbooks/postgresql-restore.yml",
        postgresql_restore_file=dumps[0],
        postgresql_restore_database="postgres",
    )
    assert refused.returncode != 0
    assert "postgres: restores run as the database's owner, never as a superuser" in refused.stdout, (
        refused.stdout[-3000:]
    )


def test_restoring_the_oldest_kept_dump_keeps_every_dump(lab, db):
    # As many as retention keeps (or more): the next dump would prune the oldest.
    dumps = sorted(db.check_output(f"ls -1 {BACKUP_DIR}/mlflow").split())
    assert len(dumps) >= lab.var("pg-db", "postgresql_backup_keep"), dumps
    restore = lab.playbook(
        "playbooks/postgresql-restore.yml",
        postgresql_restore_file=f"{BACKUP_DIR}/mlflow/{dumps[0]}",
        postgresql_restore_database="mlflow",
    )
    assert restore.returncode == 0, restore.stdout[-3000:] + restore.stderr[-2000:]
    after = set(db.check_output(f"ls -1 {BACKUP_DIR}/mlflow").split())
    assert set(dumps) <= after, f"lost: {set(dumps) - after}"
    assert len(after) == len(dumps) + 1, "the safety dump is there too"
