"""The docker service backend: each service in a container, through testcontainers-python.

Only the standard library is imported here (the engine probe); testcontainers and the Docker
SDK are imported when a container is started.
"""

from __future__ import annotations

from pytest_pipeline.services.docker._core import (
    LABEL_OWNER,
    LABEL_RUN,
    ContainerRecord,
    adopt_session,
    check_images,
    ensure_reaper,
    owner_label,
    owner_session,
    pulled_name,
    reap_stale,
    start,
    stop,
)
from pytest_pipeline.services.docker._engine import Engine, ImageCheck, image_present, probe
from pytest_pipeline.services.docker._specs import DEFAULT_IMAGES, image_of, reaper_image

__all__ = [
    "DEFAULT_IMAGES",
    "LABEL_OWNER",
    "LABEL_RUN",
    "ContainerRecord",
    "Engine",
    "ImageCheck",
    "adopt_session",
    "check_images",
    "ensure_reaper",
    "image_of",
    "image_present",
    "owner_label",
    "owner_session",
    "probe",
    "pulled_name",
    "reap_stale",
    "reaper_image",
    "start",
    "stop",
]
