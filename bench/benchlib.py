"""What the bench scripts share. Standard library only: bench/front_door.py
ships it with a script it runs on a lab host (as module `benchlib`), and a
script run by hand finds it next to itself."""

from __future__ import annotations

import hashlib
import http.client
import os
import ssl
import urllib.parse

CHUNK = 1 << 20


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def load_env_file(path: str) -> None:
    """An MLflow server's environment file into os.environ, read as its entry
    point reads it (KEY=VALUE, the value verbatim): no secret on a command line."""
    with open(path, encoding="utf-8") as env_file:
        for line in env_file:
            name, sep, value = line.rstrip("\n").partition("=")
            if sep and not name.lstrip().startswith("#"):
                os.environ[name.strip()] = value


def connect(url: str, timeout: float, blocksize: int = 8192) -> http.client.HTTPConnection:
    """An HTTP(S) connection to the URL's host (certificates not checked: the
    lab's own CA, loopback or the lab's network only)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(
            parts.hostname, parts.port or 443, timeout=timeout, context=context, blocksize=blocksize
        )
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout, blocksize=blocksize)
