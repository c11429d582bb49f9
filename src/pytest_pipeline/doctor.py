"""``pytest-pipeline doctor`` / ``pytest --pipeline-doctor``: what can run here, and the config."""

from __future__ import annotations

import importlib.util
from dataclasses import fields

from pytest_pipeline.config import SETTINGS, PipelineConfig, ServiceConfig
from pytest_pipeline.services.external import mask_url

SECRET_FIELDS = ("access_key", "secret_key")


def render_service(service: ServiceConfig) -> str:
    """One service's configured settings (secrets masked), or that it uses the defaults."""
    shown = []
    for item in fields(service):
        value = getattr(service, item.name)
        if item.name == "name" or value is None:
            continue
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
        "seed": resolved.seed,
        "dlq_assertions": resolved.dlq_assertions,
        "require_layer": resolved.require_layer,
        "allowed_hosts": ", ".join(resolved.allowed_hosts),
        "layer_dirs": ", ".join(f"{k}={v}" for k, v in resolved.layer_dirs.items()),
        "services.backend": resolved.backend,
        "services.missing": resolved.missing,
        "services.network": resolved.network,
        "services.startup_timeout": resolved.startup_timeout,
        "budgets.max_seconds": resolved.max_seconds,
        "budgets.max_memory_mb": resolved.max_memory_mb,
        "budgets.min_records_per_second": resolved.min_records_per_second,
        "budgets.time_scale": resolved.time_scale,
    }
    for setting in SETTINGS:
        origin = resolved.origins.get(setting.key, "default")
        lines.append(f"  {setting.key} = {values[setting.key]}  [{origin}]")
    lines.extend(render_service(service) for service in resolved.services.values())
    for override in resolved.overrides:
        limits = " ".join(
            f"{item.name}={getattr(override, item.name)}"
            for item in fields(override)
            if item.name != "match" and getattr(override, item.name) is not None
        )
        lines.append(f"  budgets.override {override.match}: {limits}")
    return lines


def render_backends(resolved: PipelineConfig) -> list[str]:
    """The Docker engine, then per service: the backend the session would use and what each
    backend would run here."""
    from pytest_pipeline.services import docker, local
    from pytest_pipeline.services.manager import EXTERNAL_HINT

    engine = docker.probe(1.0)
    docker_installed = importlib.util.find_spec("testcontainers") is not None
    if engine.ok:
        lines = [f"docker engine: yes - {engine.address} (Docker {engine.version})"]
        if not docker_installed:
            lines.append(
                '  (not used: pip install "pytest-pipeline[docker]" for the docker backend)'
            )
    else:
        lines = [f"docker engine: no - {engine.why_not}"]
    if engine.ok:
        reaper = docker.reaper_image()
        present = {True: "present", False: "not pulled yet", None: "unknown"}[
            docker.image_present(reaper)
        ]
        lines.append(f"docker reaper: {reaper} ({present}; RYUK_CONTAINER_IMAGE overrides)")
    lines.append("service backends:")
    for name, service in resolved.services.items():
        found = local.availability(name)
        if service.is_external:
            chosen = "external (a URL is configured)"
        elif resolved.backend == "auto" and engine.ok and docker_installed:
            chosen = "docker (auto: the engine answers)"
        elif resolved.backend in ("auto", "local"):
            chosen = "local" if found.ok else f"nothing: services.missing = {resolved.missing}"
        else:
            chosen = resolved.backend
        lines.append(f"  {name}: uses {chosen}")
        if found.ok:
            lines.append(f"    local: yes - {found.how}")
        else:
            lines.append(f"    local: no - {found.why_not}; get it with: {found.hint}")
        image = docker.image_of(service)
        if not engine.ok:
            lines.append(f"    docker: no engine (image {image})")
        else:
            state = {True: "present", False: "not pulled yet", None: "unknown"}[
                docker.image_present(image)
            ]
            lines.append(f"    docker: yes - image {image} ({state})")
        if service.is_external:
            lines.append("    external: configured")
        else:
            lines.append(f"    external: not configured ({EXTERNAL_HINT[name]})")
    return lines


def render(resolved: PipelineConfig) -> str:
    """The full doctor report."""
    return "\n".join([*render_backends(resolved), "", *render_config(resolved)])
