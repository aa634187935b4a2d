"""Undoes the store's last migration for real (alembic downgrade -1), reading
the server's settings as its entry point does."""

import os
import runpy
import sys

os.environ.update(runpy.run_path(sys.argv[1])["read_env_file"]("/etc/mlflow/mlflow.env"))
from alembic import command
from mlflow.store.db.utils import _get_alembic_config

command.downgrade(_get_alembic_config(os.environ["MLFLOW_BACKEND_STORE_URI"]), "-1")
