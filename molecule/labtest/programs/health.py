"""Exits 0 when MLflow at URL (the only argument) answers /health; HTTPS
under TLS_CLIENT."""

import sys
import urllib.request

from tls_client import tls_context  # noqa: F401 (installs the HTTPS opener)

urllib.request.urlopen(sys.argv[1] + "/health", timeout=5)
