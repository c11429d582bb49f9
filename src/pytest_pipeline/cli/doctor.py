"""``pytest-pipeline doctor`` / ``pytest --pipeline-doctor``: what can run here, and the config."""

from __future__ import annotations

import importlib.util
from dataclasses import fields
from typing import TYPE_CHECKING

from pytest_pipeline._optional import requirement
from pytest_pipeline.config import SETTINGS, SETTINGS_BY_KEY, PipelineConfig, ServiceConfig
from pytest_pipeline.masking import mask_url

if TYPE_CHECKING:
    from pytest_pipeline.services.docker import ImageCheck
    from pytest_pipeline.services.manager import ServiceManager

SECRET_FIELDS = ("access_key", "secret_key")


def render_service(service: ServiceConfig) -> str:
    """One service's configured settings (secrets masked), or that it uses the defaults."""
    shown = []
    for item in fields(service):
        value = getattr(service, item.name)
        if item.name == "name" or value is None:
            continue
        if f"services.{service.name}.{item.name}" in SETTINGS_BY_KEY:
            continue  # a setting (services.postgres.schema): shown with the settings
        if item.name in SECRET_FIELDS:
            value = "***"
        elif item.name == "url":
            value = mask_url(value)
        shown.append(f"{item.name}={value}")
    return f"  services.{service.name}: {' '.join(shown) if shown else '(defaults)'}" + (
        "  [external]" if service.is_external else ""
    )


def render_config(resolved: PipelineConfig) -> list[str]:
    """The resolved settings, each with where its value came from."""
    lines = [f"configuration ({resolved.source or 'no [tool.pytest-pipeline] section'}):"]
    values = {
        "fixtures_dir": resolved.fixtures_dir,
        "expectations_dir": resolved.expectations_dir,
        "fixtures_max_mb": resolved.fixtures_max_mb,
        "fixtures_pii": resolved.fixtures_pii,
        "fixtures_pii_allow": ", ".join(resolved.fixtures_pii_allow),
        "seed": resolved.seed,
        "dlq_assertions": resolved.dlq_assertions,
        "require_layer": resolved.require_layer,
        "allowed_hosts": ", ".join(resolved.allowed_hosts),
        "layer_dirs": ", ".join(f"{k}={v}" for k, v in resolved.layer_dirs.items()),
        "services.backend": resolved.services.backend,
        "services.missing": resolved.services.missing,
        "services.network": resolved.services.network,
        "services.startup_timeout": resolved.services.startup_timeout,
        "services.postgres.schema": ", ".join(resolved.services.postgres.schema),
        "services.postgres.schema_hook": resolved.services.postgres.schema_hook,
        "services.postgres.schema_command": resolved.services.postgres.schema_command,
        "services.postgres.schema_inputs": ", ".join(resolved.services.postgres.schema_inputs),
        "budgets.max_seconds": resolved.budgets.max_seconds,
        "budgets.max_memory_mb": resolved.budgets.max_memory_mb,
        "budgets.min_records_per_second": resolved.budgets.min_records_per_second,
        "budgets.time_scale": resolved.budgets.time_scale,
        "compare_fail": resolved.compare_fail,
    }
    for setting in SETTINGS:
        if not setting.toml:
            continue  # a command-line option only (--pipeline-doctor itself)
        origin = resolved.origins.get(setting.key, "default")
        lines.append(f"  {setting.key} = {values[setting.key]}  [{origin}]")
    lines.extend(render_service(service) for service in resolved.services.values())
    for override in resolved.budgets.overrides:
        limits = " ".join(
            f"{name}={value}"
            for name, value in override._asdict().items()
            if name != "match" and value is not None
        )
        lines.append(f"  budgets.override {override.match}: {limits}")
    return lines


def render_backends(resolved: PipelineConfig) -> list[str]:
    """The Docker engine, then per service: the backend the session would use and what each
    backend would run here."""
    from pytest_pipeline.services import docker, local
    from pytest_pipeline.services.manager import EXTERNAL_HINT, RunInfo, ServiceManager

    # The manager a test session would have: its choice of backend is the one told here.
    manager = ServiceManager(resolved, RunInfo.new())
    engine = manager.engine()
    docker_installed = importlib.util.find_spec("testcontainers") is not None
    if engine.ok:
        lines = [f"docker engine: yes - {engine.address} (Docker {engine.version})"]
        if not docker_installed:
            lines.append(
                f'  (not used: pip install "{requirement("docker")}" for the docker backend)'
            )
    else:
        lines = [f"docker engine: no - {engine.why_not}"]
    if engine.ok:
        reaper = docker.reaper_image()
        present = {True: "present", False: "not pulled yet", None: "unknown"}[
            docker.image_present(reaper)
        ]
        lines.append(f"docker reaper: {reaper} ({present}; RYUK_CONTAINER_IMAGE overrides)")
    if resolved.services.backend == "auto":
        choice = manager.auto_choice()
        lines.append(f"backend auto: {'docker' if choice.docker else 'local'} - {choice.why}")
    lines.append("service backends:")
    checks = manager.image_checks() if engine.ok else {}
    for name, service in resolved.services.items():
        found = local.availability(name)
        lines.append(f"  {name}: uses {_chosen(manager, name)}")
        if found.ok:
            lines.append(f"    local: yes - {found.how}")
        else:
            lines.append(f"    local: no - {found.why_not}; get it with: {found.hint}")
        if not engine.ok:
            lines.append(f"    docker: no engine (image {docker.image_of(service)})")
        elif name in checks:
            lines.append(f"    docker: yes - image {checks[name].image} ({_state(checks[name])})")
        else:
            lines.append("    docker: not asked (a URL is configured)")
        if service.is_external:
            lines.append("    external: configured")
        else:
            lines.append(f"    external: not configured ({EXTERNAL_HINT[name]})")
    return lines


def _chosen(manager: ServiceManager, name: str) -> str:
    """The backend the session would use for ``name``, asked of its manager, and why."""
    choice = manager.choice(name)
    backend, found = choice.backend, choice.availability
    if not backend.shared:  # a server someone else runs: the fixture fails without its URL
        return f"{backend.name} ({found.how})" if found.ok else f"nothing: {found.why_not}"
    if not found.ok:  # a server the run would start: services.missing decides
        return f"nothing: services.missing = {manager.resolved.services.missing}"
    return f"{backend.name} (auto)" if choice.auto else backend.name


def _state(check: ImageCheck) -> str:
    return {
        "present": "present",
        "pullable": "not on the engine; its registry has it",
        "missing": f"not on the engine, cannot be pulled: {check.why}",
    }.get(check.state, f"unknown: {check.why}")


def render(resolved: PipelineConfig) -> str:
    """The full doctor report."""
    return "\n".join([*render_backends(resolved), "", *render_config(resolved)])
