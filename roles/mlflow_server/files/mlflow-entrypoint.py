"""Entry point of MLflow in both install modes of role mlflow_server: the
systemd unit's ExecStart and the image's ENTRYPOINT.

Reads the server's settings, secrets included, from the environment file at
$MLFLOW_ENV_FILE (one KEY=VALUE per line, the value verbatim to the end of
the line: any printable password works the same way in both modes), so they
never show in `docker inspect`, a unit file or a command line; then runs
`mlflow ARGS...` (default: `mlflow server`). With `--health` it checks the
server's /health endpoint instead (the image's HEALTHCHECK; over HTTPS with
the server's own certificate when MLFLOW_VM_TLS_CERTFILE is set); with
`schema` it prints where the database schemas stand for this MLflow (see schema());
with `migrate` it upgrades them in this process (see migrate()); with
`gc ARGS` it runs `mlflow gc ARGS` on the backend store (see gc()).
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped; values taken verbatim."""
    settings = {}
    with open(path, encoding="utf-8") as env_file:
        for line in env_file:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#") or "=" not in line:
                continue
            name, value = line.split("=", 1)
            settings[name.strip()] = value
    return settings


def _schema_state(config, url: str, version_table: str) -> dict[str, object]:
    """The database's alembic revision, this MLflow's head, and whether this
    MLflow knows the database's revision (False: a newer MLflow migrated it)."""
    import sqlalchemy
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    script = ScriptDirectory.from_config(config)
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(
                connection, opts={"version_table": version_table}
            ).get_current_revision()
    finally:
        engine.dispose()
    try:
        known = current is None or script.get_revision(current) is not None
    except CommandError:
        known = False
    return {"current": current, "head": script.get_current_head(), "known": known}


def schema() -> int:
    """Prints one JSON line: for the backend store ("store") and, when the
    auth app is on, its database ("auth"), the current revision, this
    MLflow's head and whether this MLflow knows the current revision. The
    role migrates when a current revision is not the head, and refuses a
    version that does not know it. Reads only."""
    from mlflow.store.db.utils import _get_alembic_config

    store = os.environ["MLFLOW_BACKEND_STORE_URI"]
    state = {"store": _schema_state(_get_alembic_config(store), store, "alembic_version")}
    if os.environ.get("MLFLOW_AUTH_CONFIG_PATH"):
        from mlflow.server.auth.config import read_auth_config
        from mlflow.server.auth.db.utils import _get_alembic_config as auth_alembic_config

        auth = read_auth_config().database_uri
        state["auth"] = _schema_state(auth_alembic_config(auth), auth, "alembic_version_auth")
    print(json.dumps(state))
    return 0


def migrate() -> int:
    """`mlflow db upgrade` on the backend store, and the auth app's upgrade on
    its database when the app is on, called in this process: the URIs (and a
    password an external one holds) never reach a command line."""
    from mlflow.db import upgrade

    upgrade.callback(os.environ["MLFLOW_BACKEND_STORE_URI"])
    if os.environ.get("MLFLOW_AUTH_CONFIG_PATH"):
        from mlflow.server.auth.config import read_auth_config
        from mlflow.server.auth.db.cli import upgrade as upgrade_auth

        upgrade_auth.callback(url=read_auth_config().database_uri, revision="head")
    return 0


def gc(args: list[str]) -> int:
    """`mlflow gc` on the backend store, in this process: runs (and
    experiments, logged models) deleted longer ago than --older-than, with
    their artifacts. The server's proxied artifact URIs (mlflow-artifacts:/PATH)
    are resolved as the server itself does, to MLFLOW_ARTIFACTS_DESTINATION/PATH:
    no HTTP, no credentials, and the store URI never on a command line."""
    from urllib.parse import urlsplit

    import mlflow
    from mlflow.cli import gc as gc_command
    from mlflow.store.artifact import artifact_repository_registry as registry

    # gc wants a tracking URI; the store's, set here, keeps it off argv.
    mlflow.set_tracking_uri(os.environ["MLFLOW_BACKEND_STORE_URI"])

    destination = os.environ.get("MLFLOW_ARTIFACTS_DESTINATION")
    if destination:

        def proxied(uri, *_, **__):
            path = urlsplit(uri).path.lstrip("/")
            return registry.get_artifact_repository(destination.rstrip("/") + "/" + path)

        registry._artifact_repository_registry.register("mlflow-artifacts", proxied)
    gc_command.main(
        ["--backend-store-uri", os.environ["MLFLOW_BACKEND_STORE_URI"], *args], standalone_mode=False
    )
    return 0


def main(args: list[str]) -> int:
    path = os.environ.get("MLFLOW_ENV_FILE", "/etc/mlflow/mlflow.env")
    os.environ.update(read_env_file(path))
    if args == ["--health"]:
        host = os.environ.get("MLFLOW_HOST", "0.0.0.0")
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        certificate = os.environ.get("MLFLOW_VM_TLS_CERTFILE")
        url = "{}://{}:{}{}/health".format(
            "https" if certificate else "http",
            host,
            os.environ.get("MLFLOW_PORT", "5000"),
            os.environ.get("MLFLOW_STATIC_PREFIX", ""),
        )
        context = None
        if certificate:
            # Mutual TLS: the server's own certificate is this client's.
            context = ssl.create_default_context(cafile=os.environ.get("MLFLOW_VM_TLS_CA") or None)
            context.load_cert_chain(certificate, os.environ["MLFLOW_VM_TLS_KEYFILE"])
        try:
            with urllib.request.urlopen(url, timeout=4, context=context) as response:
                return 0 if response.status == 200 else 1
        except OSError as error:
            print(f"{url}: {error}", file=sys.stderr)
            return 1
    if os.environ.get("MLFLOW_EXPOSE_PROMETHEUS"):
        os.makedirs(os.environ["MLFLOW_EXPOSE_PROMETHEUS"], exist_ok=True)
    if args == ["schema"]:
        return schema()
    if args == ["migrate"]:
        return migrate()
    if args[:1] == ["gc"]:
        return gc(args[1:])
    mlflow = os.path.join(sys.prefix, "bin", "mlflow")
    os.execv(mlflow, [mlflow, *(args or ["server"])])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
