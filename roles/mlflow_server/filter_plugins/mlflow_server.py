"""Filters of role mlflow_server, as plain Python with their own tests
(tests/test_filter_plugins.py)."""

from __future__ import annotations

import re

LINE_BREAK = re.compile(r"[\r\n\x00]")


def unsafe_env_values(settings: dict, extra_env: dict | None = None) -> list[str]:
    """Names of the settings whose value the environment file cannot hold (it
    holds one value per line): a line break or NUL inside. `extra_env` (the
    free-form mlflow_server_env) is named once, as "mlflow_server_env", if any
    of its values has one."""
    names = [name for name, value in settings.items() if LINE_BREAK.search(str(value))]
    if any(LINE_BREAK.search(str(value)) for value in (extra_env or {}).values()):
        names.append("mlflow_server_env")
    return names


def old_versions(found: list[dict], folder: str, current: str, keep: int) -> list[dict]:
    """What ansible.builtin.find found under `folder` ("/venvs/" or
    "/image/") beyond the `current` one and the `keep` newest others (by
    modification time): the installs to remove."""
    others = [item for item in found if folder in item["path"] and item["path"] != current]
    return sorted(others, key=lambda item: item["mtime"], reverse=True)[int(keep) :]


def old_image_tags(images: list[dict], current: str, repository: str, keep: int) -> list[str]:
    """The tags of `repository` to remove from community.docker's image list
    (verbose: RepoTags, Created): the images but the one `current` names and
    the `keep` newest others. Only this repository's tags: an old image that
    also carries another name (a base image) keeps that name."""
    tagged = [image for image in images if image.get("RepoTags") and current not in image["RepoTags"]]
    old = sorted(tagged, key=lambda image: image["Created"], reverse=True)[int(keep) :]
    return [tag for image in old for tag in image["RepoTags"] if tag.startswith(repository + ":")]


class FilterModule:
    def filters(self):
        return {
            "mlflow_server_unsafe_env_values": unsafe_env_values,
            "mlflow_server_old_versions": old_versions,
            "mlflow_server_old_image_tags": old_image_tags,
        }
