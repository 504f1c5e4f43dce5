"""`build:`: what `corral deploy --build` builds, and the file it then deploys (pure; the CLI runs the builds).

A service's `build` is a context path, or a mapping with `context`,
`dockerfile`, `dockerfile_inline`, `args`, `target` and `labels`. The
cluster never builds: the deploying machine builds each image with its own
Docker engine and pushes it to the cluster's registry (`corral/cli/builds.py`);
`with_images` then gives the file whose services name the pushed images, which
is what the manager receives. A file whose service has `build:` and no
`image:` reaches the manager only that way; on its own it is refused
(`check_build`), with the way out.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from corral.compose import yaml_loader as compose_yaml
from corral.compose.keyvalues import parse_labels
from corral.compose.paths import child
from corral.compose.values import optional, read_mapping, read_non_empty_string, read_string
from corral.model.errors import InvalidSpec
from corral.model.limits import Limits

BUILD_KEYS = frozenset({"context", "dockerfile", "dockerfile_inline", "args", "target", "labels"})


@dataclass(frozen=True)
class Build:
    """One service's build: where, with what, and the image it must become (None: the CLI names it)."""

    service: str  # its name in the file
    context: str
    dockerfile: str | None = None
    dockerfile_inline: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    image: str | None = None


def check_build(section: Mapping[str, object], path: str) -> None:
    """Refuse a service that has `build:` and no `image:`: the manager has nothing to run."""
    if section.get("build") is not None and section.get("image") is None:
        raise InvalidSpec(
            child(path, "build"),
            "the cluster does not build images: deploy with `corral deploy --build` to build it on this machine "
            "and push it to the cluster's registry, or set image: to an image the nodes can pull",
        )


def read_builds(text: str, limits: Limits = Limits()) -> list[Build]:
    """The builds the compose text asks for, in the file's order; InvalidSpec names a bad one's path."""
    document = read_mapping(compose_yaml.load(text, limits, 10.0), "")
    builds = []
    for name, body in read_mapping(document.get("services"), "services").items():
        section = read_mapping(body, child("services", name))
        if section.get("build") is not None:
            builds.append(_read_build(name, section["build"], child(child("services", name), "build"), section.get("image")))
    return builds


def with_images(text: str, images: Mapping[str, str], limits: Limits = Limits()) -> str:
    """The compose text with each built service's `image:` set to its pushed reference and its `build:` gone."""
    document = read_mapping(compose_yaml.load(text, limits, 10.0), "")
    services = read_mapping(document.get("services"), "services")
    for name, reference in images.items():
        section = read_mapping(services[name], child("services", name))
        section.pop("build", None)
        section["image"] = reference
    return yaml.safe_dump(document, sort_keys=False)


def _read_build(service: str, value: object, path: str, image: object) -> Build:
    explicit = read_non_empty_string(image, child(path.rpartition(".")[0], "image")) if image is not None else None
    if isinstance(value, str):
        return Build(service=service, context=read_non_empty_string(value, path), image=explicit)
    section = read_mapping(value, path)
    unknown = sorted(key for key in section if key not in BUILD_KEYS and not key.startswith("x-"))
    if unknown:  # a build key we would drop changes the image: refuse it rather than build another one
        raise InvalidSpec(child(path, unknown[0]), f"is not supported by --build: use {', '.join(sorted(BUILD_KEYS))}")
    inline = optional(section, "dockerfile_inline", path, read_non_empty_string, None)
    dockerfile = optional(section, "dockerfile", path, read_non_empty_string, None)
    if inline is not None and dockerfile is not None:
        raise InvalidSpec(child(path, "dockerfile_inline"), "cannot be combined with dockerfile: give one")
    return Build(
        service=service,
        context=optional(section, "context", path, read_non_empty_string, "."),
        dockerfile=dockerfile,
        dockerfile_inline=inline,
        args=parse_labels(section.get("args"), child(path, "args")),  # KEY=VALUE in list or mapping form
        target=optional(section, "target", path, read_string, None),
        labels=parse_labels(section.get("labels"), child(path, "labels")),
        image=explicit,
    )
