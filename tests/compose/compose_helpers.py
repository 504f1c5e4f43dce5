"""Shortcuts for the compose tests: a file with one service, `web`, deployed as stack `app`."""

import pytest
import yaml

from corral.compose import ComposeResult, parse_compose
from corral.model.errors import InvalidSpec
from corral.model.service import ServiceSpec


def web_result(service: object) -> ComposeResult:
    return parse_compose(yaml.safe_dump({"services": {"web": service}}, sort_keys=False), "app")


def web(service: object) -> ServiceSpec:
    return web_result(service).services[0]


def compose_error(text: str, stack: str = "app") -> InvalidSpec:
    with pytest.raises(InvalidSpec) as caught:
        parse_compose(text, stack)
    return caught.value


def web_error(service: object) -> InvalidSpec:
    return compose_error(yaml.safe_dump({"services": {"web": service}}, sort_keys=False))
