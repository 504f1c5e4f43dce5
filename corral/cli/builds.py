"""`corral deploy --build`: build each service's image with this machine's Docker engine and push it to the cluster.

For each service with `build:` (`corral/compose/builds.py` reads them), the
real `docker` client builds the image, tags it as `REGISTRY/STACK_SERVICE:TAG`
(or the service's own `image:`) and pushes it. TAG is the first 16 hex digits of
the built image's ID, which is a digest of its content: an unchanged build
(the engine's cache gives the same image) names the same reference, so the
deploy that follows changes nothing. Pushing logs in to the cluster's registry
with an API token (`CORRAL_TOKEN`, else the admin token of a manager on this
machine) in a Docker config of its own, so the user's ~/.docker is not touched.
"""

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

from corral.cli.credentials import manager_url, token_for
from corral.cli.output import call, console, fail
from corral.compose.builds import Build, read_builds, with_images
from corral.model.errors import InvalidSpec

_TAG_DIGITS = 16


class BuildFailed(Exception):
    """A build, tag, login or push failed; the message says which and the engine's words."""


def repository(registry: str, stack: str, service: str) -> str:
    """Where a built service's image goes: REGISTRY/STACK_SERVICE (lowercase, as registries want)."""
    return f"{registry}/{stack}_{service}".lower()


def build_and_push(builds: list[Build], compose_dir: Path, registry: str, stack: str, token: str | None) -> dict[str, str]:
    """Build, tag and push every build; the pushed reference of each service."""
    pushed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="corral-docker-") as config:
        env = {**os.environ, "DOCKER_CONFIG": config} if token else dict(os.environ)
        if token:
            _docker(["login", registry, "-u", "corral", "--password-stdin"], env, f"log in to {registry}", stdin=token)
        for build in builds:
            image_id = _build(build, compose_dir, env)
            reference = build.image or f"{repository(registry, stack, build.service)}:{image_id.removeprefix('sha256:')[:_TAG_DIGITS]}"
            _docker(["tag", image_id, reference], env, f"tag {build.service} as {reference}")
            console.print(f"Built {build.service}: pushing {reference}", highlight=False)
            _docker(["push", reference], env, f"push {reference}", show=sys.stdout.isatty())  # docker's own progress bars
            pushed[build.service] = reference
    return pushed


def _build(build: Build, compose_dir: Path, env: Mapping[str, str]) -> str:
    context = (compose_dir / build.context).resolve()
    if not context.is_dir():
        raise BuildFailed(f"services.{build.service}.build: the context {context} is not a directory")
    with tempfile.TemporaryDirectory(prefix="corral-build-") as scratch:
        id_file = Path(scratch) / "image-id"
        command = ["build", "--iidfile", str(id_file)]
        if build.dockerfile_inline is not None:
            command += ["-f", "-"]
        elif build.dockerfile is not None:
            command += ["-f", str(context / build.dockerfile)]
        command += [arg for key, value in build.args.items() for arg in ("--build-arg", f"{key}={value}")]
        command += [arg for key, value in build.labels.items() for arg in ("--label", f"{key}={value}")]
        if build.target:
            command += ["--target", build.target]
        console.print(f"Building {build.service} from {context}", highlight=False)
        _docker([*command, str(context)], env, f"build {build.service}", stdin=build.dockerfile_inline)
        return id_file.read_text().strip()


def _docker(args: list[str], env: Mapping[str, str], what: str, stdin: str | None = None, show: bool = False) -> None:
    """Run the docker client; `show`: its output goes to the terminal as it comes (a push's progress)."""
    try:
        done = subprocess.run(["docker", *args], input=stdin, capture_output=not show, text=True, env=dict(env), timeout=1800)
    except FileNotFoundError:
        raise BuildFailed("--build needs the docker client on this machine: none was found on PATH") from None
    except subprocess.TimeoutExpired:
        raise BuildFailed(f"cannot {what}: docker took more than 30 minutes") from None
    if done.returncode != 0:
        words = (done.stderr or done.stdout or "").strip().splitlines()
        raise BuildFailed(f"cannot {what}: {' '.join(words[-3:]) if words else f'docker exited {done.returncode}'}")


def built_compose(text: str, stack: str, directory: Path, manager: str | None, dry_run: bool) -> str:
    """The compose text to deploy once its builds are pushed (with --dry-run: say what would be built, build nothing);
    build contexts are relative to `directory` (the first compose file's)."""
    try:
        builds = read_builds(text)
    except (InvalidSpec, yaml.YAMLError, ValueError, OverflowError, RecursionError):
        return text  # the manager reports what is wrong with the file, as for any file
    if not builds:
        return text
    registry = call(manager, lambda c: c.get("/v1/info")).get("registry")
    if not registry:
        fail("--build pushes to the cluster's registry, and this manager runs none (started with --no-registry)")
    if dry_run:
        images = {b.service: b.image or f"{repository(registry, stack, b.service)}:dry-run" for b in builds}
        for build in builds:
            console.print(f"would build {build.service} from {directory / build.context} and push {images[build.service]}",
                          highlight=False)
        return with_images(text, images)
    try:
        pushed = build_and_push(builds, directory, registry, stack, token_for(manager_url(manager)))
    except BuildFailed as err:
        fail(str(err))
    return with_images(text, pushed)
