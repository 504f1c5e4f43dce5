"""Compose's per-service forms of what `deploy:` also says: `restart`, `mem_limit`, `mem_reservation`, `cpus`.

`docker compose` honours them on one machine; a cluster honours them the
same way, as the deploy section's `restart_policy` and `resources` would.
When both are given, the deploy section wins for `restart` (as the
Compose Specification says), and the amounts must agree (as compose checks).
"""

import dataclasses
from collections.abc import Mapping

from corral.compose.deploy import Deploy
from corral.compose.paths import child
from corral.compose.resources import parse_cpus
from corral.compose.sizes import parse_bytes
from corral.compose.values import optional, read_string, show
from corral.model.errors import InvalidSpec
from corral.model.resources import Resources
from corral.model.service import RestartPolicy

OLDER_KEYS = frozenset({"restart", "mem_limit", "mem_reservation", "cpus"})
_EXPECTED = "expected no, always, on-failure, on-failure:N or unless-stopped"


def with_older_forms(deploy: Deploy, section: Mapping[str, object], path: str) -> Deploy:
    """`deploy` with the service's `restart`, `mem_limit`, `mem_reservation` and `cpus` folded in."""
    raw_deploy = section.get("deploy")
    deploy_has_policy = isinstance(raw_deploy, dict) and raw_deploy.get("restart_policy") is not None
    restart_policy = deploy.restart_policy
    if not deploy_has_policy:
        restart_policy = optional(section, "restart", path, parse_restart, deploy.restart_policy)
    limits = _fold(deploy.limits, section, path, "cpus", "mem_limit", "limits")
    reservations = _fold(deploy.reservations, section, path, None, "mem_reservation", "reservations")
    if limits.memory and reservations.memory > limits.memory:
        raise InvalidSpec(child(path, "mem_reservation"), f"{reservations.memory} bytes is more than the limit of {limits.memory}")
    return dataclasses.replace(deploy, restart_policy=restart_policy, limits=limits, reservations=reservations)


def parse_restart(value: object, path: str) -> RestartPolicy:
    """`restart: no | always | on-failure[:N] | unless-stopped` as a restart policy (`no` is condition none)."""
    if value is False:  # YAML 1.1 reads a bare `no` as false
        value = "no"
    text = read_string(value, path).strip()
    word, _, attempts = text.partition(":")
    if word == "no" and not attempts:
        return RestartPolicy(condition="none")
    if word in ("always", "unless-stopped") and not attempts:
        return RestartPolicy(condition="any")
    if word == "on-failure":
        if not attempts:
            return RestartPolicy(condition="on-failure")
        if attempts.isdigit():
            return RestartPolicy(condition="on-failure", max_attempts=int(attempts))
    raise InvalidSpec(path, f"unknown restart policy {show(text)}: {_EXPECTED}")


def _fold(amounts: Resources, section: Mapping[str, object], path: str, cpus_key: str | None, memory_key: str, where: str) -> Resources:
    cpus = optional(section, cpus_key, path, parse_cpus, 0.0) if cpus_key else 0.0
    memory = optional(section, memory_key, path, parse_bytes, 0)
    if cpus and amounts.cpus and cpus != amounts.cpus:
        raise InvalidSpec(child(path, str(cpus_key)), f"{cpus:g} differs from deploy.resources.{where}.cpus {amounts.cpus:g}: give one")
    if memory and amounts.memory and memory != amounts.memory:
        raise InvalidSpec(child(path, memory_key), f"{memory} bytes differs from deploy.resources.{where}.memory {amounts.memory}: give one")
    return Resources(cpus=amounts.cpus or cpus, memory=amounts.memory or memory)
