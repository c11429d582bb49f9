"""Local S3: a ``minio`` binary from PATH, else moto's server in a child process."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from pytest_pipeline._optional import requirement
from pytest_pipeline.services import probes as _probes
from pytest_pipeline.services.endpoints import S3Endpoint
from pytest_pipeline.services.local import _proc
from pytest_pipeline.services.local._common import Availability, Found, LaunchPlan, Workspace

HINT = f'pip install "{requirement("local")}" (moto with flask), or put a minio binary on PATH'
_MOTO_SCRIPT = Path(__file__).with_name("_moto.py")


@dataclass(frozen=True)
class _Binary:
    kind: str  # minio | moto
    path: Path
    version: str


def _minio_version(minio: str) -> tuple[str | None, str]:
    return _proc.probe_version([minio, "--version"], r"version\s+(\S+)")


def find() -> Found:
    """Locate minio on PATH, else moto with its server extras (flask, werkzeug)."""
    minio = shutil.which("minio")
    if minio:
        version, problem = _minio_version(minio)
        if version is None:
            return Availability("s3", False, "", problem, HINT), None
        binary = _Binary("minio", Path(minio), version)
        return (
            Availability("s3", True, f"MinIO {version} from {minio}", "", HINT),
            lambda ws: _Launcher(binary, ws),
        )
    missing = [m for m in ("moto", "flask", "werkzeug") if importlib.util.find_spec(m) is None]
    if missing:
        return (
            Availability(
                "s3",
                False,
                "",
                f"no minio on PATH and no moto server ({', '.join(missing)} not installed)",
                HINT,
            ),
            None,
        )
    from importlib import metadata  # not at module level: it costs ~20 ms to import

    version = metadata.version("moto")
    binary = _Binary("moto", Path(sys.executable), version)
    return (
        Availability("s3", True, f"moto {version} threaded server", "", HINT),
        lambda ws: _Launcher(binary, ws),
    )


class _Launcher:
    def __init__(self, binary: _Binary, ws: Workspace) -> None:
        self.binary = binary
        self.ws = ws
        self.ports_needed = 2 if binary.kind == "minio" else 1
        self.access_key = "pytest-pipeline"
        self.secret_key = os.urandom(16).hex()

    def plan(self, ports: list[int]) -> LaunchPlan:
        port = ports[0]
        endpoint = S3Endpoint(
            endpoint_url=f"http://127.0.0.1:{port}",
            access_key=self.access_key,
            secret_key=self.secret_key,
        )
        env = dict(os.environ)
        if self.binary.kind == "minio":
            data = self.ws.workdir / "data"
            data.mkdir(exist_ok=True)
            cmd = [
                str(self.binary.path),
                "server",
                str(data),
                "--address",
                f"127.0.0.1:{port}",
                "--console-address",
                f"127.0.0.1:{ports[1]}",
                "--quiet",
            ]
            env.update(
                MINIO_ROOT_USER=self.access_key,
                MINIO_ROOT_PASSWORD=self.secret_key,
                MINIO_BROWSER="off",
                MINIO_UPDATE="off",
            )
            path, want_200, name = "/minio/health/live", True, "MinIO"
        else:
            cmd = [str(self.binary.path), str(_MOTO_SCRIPT), "--host", "127.0.0.1"]
            cmd += ["--port", str(port)]
            # moto accepts any credentials; these keep boto3 from looking elsewhere.
            env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
            path, want_200, name = "/", False, "moto"

        def probe(timeout: float) -> bool:
            return _probes.http_ready("127.0.0.1", port, path, timeout, want_200=want_200)

        return LaunchPlan(
            cmd=cmd,
            env=env,
            cwd=self.ws.workdir,
            endpoint=endpoint,
            description=f"local {name} {self.binary.version}",
            probe=probe,
            port=port,
            grace=3.0,
        )
