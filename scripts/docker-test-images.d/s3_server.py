"""S3 server of the offline test image: moto behind MinIO's command line and health endpoint.

Accepts ``server DIR [--address [HOST]:PORT] [--console-address ...]`` like MinIO and answers
``GET /minio/health/live`` and ``/minio/health/ready`` with 200, so the plugin can treat it
exactly like the MinIO image it replaces.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

HEALTH = ("/minio/health/live", "/minio/health/ready")


def parse(argv: list[str]) -> tuple[str, int]:
    if argv[:1] != ["server"]:
        # As MinIO does: a command it does not know ends the container.
        sys.exit(f"usage: server DIR [--address [HOST]:PORT] (got {' '.join(argv) or 'nothing'})")
    argv = argv[1:]
    host, port = "0.0.0.0", 9000
    for flag, value in zip(argv, argv[1:]):
        if flag == "--address":
            name, _, number = value.rpartition(":")
            host, port = name or "0.0.0.0", int(number)
    return host, port


def with_health(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in HEALTH:
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        return app(environ, start_response)

    return wrapped


if __name__ == "__main__":
    host, port = parse(sys.argv[1:])
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = DomainDispatcherApplication(create_backend_app)
    # Load S3 before listening, so "healthy" means "S3 answers".
    app.app_instances["s3"] = create_backend_app("s3")
    server = make_server(
        host, port, with_health(app), threaded=True, request_handler=MotoRequestHandler
    )
    print(f"S3 API: http://{host}:{port} (moto, MinIO-compatible health)", flush=True)
    server.serve_forever()
