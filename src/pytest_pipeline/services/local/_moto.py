"""Serve moto (an in-memory S3 and more) on one local port, quietly.

Run as ``python _moto.py --host 127.0.0.1 --port N`` by the S3 launcher (as a script, not with
``-m``, so it works whatever the caller's ``sys.path``). Output goes to the server log file;
werkzeug's per-request lines are switched off.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    """Load moto's S3 backend, then serve HTTP until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    # Load S3 before listening: "answers HTTP" then means "S3 is ready", and the first test
    # does not pay for the import.
    app.app_instances["s3"] = create_backend_app("s3")
    try:
        server = make_server(
            args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"moto: address already in use: {args.host}:{args.port}", file=sys.stderr)
            return 98
        raise
    print(f"moto: serving on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
