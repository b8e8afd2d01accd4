"""TCP ports: bind a listening socket the way uvicorn does, find a free port, check a port is free."""

from __future__ import annotations

import contextlib
import socket

__all__ = ["bind_socket", "free_port", "port_is_free"]


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on `host:port` (0 = any free port) the way uvicorn does; the caller owns the socket.

    Raises `OSError` (e.g. errno EADDRINUSE) when the port is taken.

    >>> sock = bind_socket("127.0.0.1", 0)
    >>> sock.getsockname()[1] > 0
    True
    >>> sock.close()
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when the listening
    # socket says it is TCP; with proto 0 every small response waits ~40 ms for Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # Same options as uvicorn.Config.bind_socket: SO_REUSEADDR lets a new server take a port whose old
        # connections are in TIME_WAIT, but a port that another socket *listens* on still fails to bind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port that was free a moment ago (there is a small race: prefer binding port 0 yourself).

    >>> 0 < free_port() < 65536
    True
    """
    with contextlib.closing(bind_socket(host, 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


def port_is_free(host: str, port: int) -> bool:
    """True when a new server could listen on `host:port` now.

    >>> port_is_free("127.0.0.1", free_port())
    True
    """
    try:
        sock = bind_socket(host, port)
    except OSError:
        return False
    sock.close()
    return True
