"""Runs on a host: one GET of URL/health over HTTPS with what TLS_CLIENT gives;
prints the HTTP status, or the name of the error that stopped it."""

import sys
import urllib.request

from tls_client import tls_context  # noqa: F401 (installs the HTTPS opener)

try:
    print(urllib.request.urlopen(sys.argv[1] + "/health", timeout=5).status)
except Exception as error:
    print(type(error).__name__, str(error)[:120])
