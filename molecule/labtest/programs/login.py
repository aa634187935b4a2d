"""Logs in to PostgreSQL with the password on stdin (base64: any character),
from an MLflow host, with its venv's psycopg: LOGIN HOST SSLMODE, the
certificate checked against the CA the server has."""

import base64
import sys

import psycopg

password = base64.b64decode(sys.stdin.read()).decode()
psycopg.connect(
    host=sys.argv[1],
    dbname="mlflow",
    user="mlflow",
    password=password,
    sslmode=sys.argv[2],
    sslrootcert="/etc/mlflow/tls/db-ca.crt",
).close()
