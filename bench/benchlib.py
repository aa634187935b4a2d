"""What the bench scripts share. Standard library only: bench/front_door.py
ships it with a script it runs on a lab host (as module `benchlib`), and a
script run by hand finds it next to itself."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import ssl
import sys
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
    lab's own CA, loopback or the lab's network only). With
    BENCH_CLIENT_CERT=CERT:KEY it presents that client certificate (the
    proxy's, which the lab's MLflow servers require)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if os.environ.get("BENCH_CLIENT_CERT"):
            context.load_cert_chain(*os.environ["BENCH_CLIENT_CERT"].split(":"))
        return http.client.HTTPSConnection(
            parts.hostname, parts.port or 443, timeout=timeout, context=context, blocksize=blocksize
        )
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout, blocksize=blocksize)


def add_target_args(parser, url_help: str) -> None:
    """The options naming an MLflow URL and how to log in to it."""
    parser.add_argument("--url", required=True, help=url_help)
    parser.add_argument("--host", help="Host header (default: the URL's)")
    parser.add_argument("--user")
    parser.add_argument("--password-stdin", action="store_true")


def basic_auth(args) -> str | None:
    """The Authorization header for --user (password: first line of stdin with --password-stdin)."""
    if not args.user:
        return None
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else ""
    return "Basic " + base64.b64encode(f"{args.user}:{password}".encode()).decode()


def random_file(path: str, size_mib: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(CHUNK))


def print_transfer(size_mib: int, up: float, down: float, intact: bool) -> None:
    """The JSON line of a timed upload and download."""
    print(
        json.dumps(
            {
                "size_mib": size_mib,
                "upload_mib_s": size_mib / up,
                "download_mib_s": size_mib / down,
                "upload_s": up,
                "download_s": down,
                "intact": intact,
            }
        )
    )
