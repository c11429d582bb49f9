"""Readiness checks that speak each server's protocol, using only the standard library.

Each probe makes one bounded attempt and returns True when the server answers like a ready
server; connection errors and timeouts mean "not yet".
"""

from __future__ import annotations

import socket
import struct

_PG_PROTOCOL_3 = 196608
_PG_CANNOT_CONNECT_NOW = b"57P03"  # "the database system is starting up"


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def postgres_ready(host: str, port: int, user: str, dbname: str, timeout: float) -> bool:
    """Send a startup packet; ready once the server authenticates us or asks for a password."""
    params = f"user\0{user}\0database\0{dbname}\0\0".encode()
    body = struct.pack("!I", _PG_PROTOCOL_3) + params
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack("!I", len(body) + 4) + body)
            while True:
                kind = _recv_exact(sock, 1)
                (length,) = struct.unpack("!I", _recv_exact(sock, 4))
                payload = _recv_exact(sock, length - 4)
                if kind == b"R":
                    (code,) = struct.unpack("!I", payload[:4])
                    if code != 0:
                        return True  # a password is wanted: the server accepts connections
                elif kind == b"Z":
                    sock.sendall(b"X\0\0\0\4")  # Terminate
                    return True
                elif kind == b"E":
                    fields = {f[:1]: f[1:] for f in payload.split(b"\0") if f}
                    return fields.get(b"C") != _PG_CANNOT_CONNECT_NOW
    except (OSError, struct.error):
        return False


def _kafka_string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("!h", len(raw)) + raw


def kafka_ready(host: str, port: int, timeout: float) -> bool:
    """Ask for cluster metadata (v1); ready once a broker and a controller are known."""
    correlation = 7
    # Metadata v1 with a null topic array (all topics): api_key 3, api_version 1.
    request = (
        struct.pack("!hhi", 3, 1, correlation) + _kafka_string("pytest-pipeline") + b"\xff" * 4
    )
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack("!i", len(request)) + request)
            (size,) = struct.unpack("!i", _recv_exact(sock, 4))
            data = _recv_exact(sock, size)
    except (OSError, struct.error):
        return False
    try:
        (got, brokers) = struct.unpack_from("!ii", data, 0)
        if got != correlation or brokers < 1:
            return False
        offset = 8
        for _ in range(brokers):
            offset += 4  # node_id
            (host_len,) = struct.unpack_from("!h", data, offset)
            offset += 2 + host_len + 4  # host, port
            (rack_len,) = struct.unpack_from("!h", data, offset)
            offset += 2 + max(rack_len, 0)
        (controller,) = struct.unpack_from("!i", data, offset)
    except struct.error:
        return False
    return bool(controller >= 0)


def http_ready(host: str, port: int, path: str, timeout: float, *, want_200: bool) -> bool:
    """GET ``path``; ready on 200 (``want_200``) or on any answer below 500."""
    import http.client  # only S3 needs it

    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return status == 200 if want_200 else status < 500
