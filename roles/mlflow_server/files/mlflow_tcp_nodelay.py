"""TCP_NODELAY on every TCP connection MLflow's server accepts.

Installed into the server's venv with a one-line .pth file, so every Python
process of that venv (the uvicorn supervisor and its workers) loads it.

uvicorn with --workers N binds the listening socket itself, with proto 0;
accepted sockets inherit it, and asyncio turns Nagle's algorithm off only on
sockets whose proto is IPPROTO_TCP. So each response on a kept-alive
connection waited ~40 ms for the peer's delayed ACK (uvicorn issue 3149,
open). This replaces asyncio's check with one that drops the proto test and
keeps the family and type tests. Nothing else changes; without the private
hook (another Python) it does nothing.
"""

import socket
from asyncio import base_events


def _set_nodelay(sock: socket.socket) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


if hasattr(base_events, "_set_nodelay"):
    base_events._set_nodelay = _set_nodelay
