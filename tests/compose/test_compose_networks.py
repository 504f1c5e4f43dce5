"""compose `networks:` and `expose:`: the networks a service joins and the ports it offers unpublished."""

import pytest

from corral.compose import parse_compose
from corral.model import NetworkAttachment, PortSpec

from compose_helpers import compose_error, web, web_error


def test_a_service_joins_its_stack_network_by_default() -> None:
    assert web({"image": "x"}).networks == [NetworkAttachment(name="app_default")]
    assert web({"image": "x", "networks": []}).networks == [NetworkAttachment(name="app_default")]


def test_named_external_and_internal_networks_with_aliases() -> None:
    text = """
services:
  web:
    image: x
    networks:
      default: {aliases: [www, front]}
      back: null
      shop: {}
networks:
  back: {internal: true}
  shop: {external: true, name: shop_default}
  other: {name: custom}
"""
    [spec] = parse_compose(text, "app").services
    assert spec.networks == [
        NetworkAttachment(name="app_default", aliases=["www", "front"]),
        NetworkAttachment(name="app_back", internal=True),
        NetworkAttachment(name="shop_default"),
    ]
    listed = parse_compose("services: {web: {image: x, networks: [default, back]}}\nnetworks: {back: {}}", "app").services[0]
    assert [n.name for n in listed.networks] == ["app_default", "app_back"]


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ("services: {web: {image: x, networks: [nope]}}", "services.web.networks.nope", "not defined"),
        ("services: {web: {image: x, networks: {default: {ipv4_address: 1.2.3.4}}}}", "services.web.networks.default.ipv4_address", "only `aliases`"),
        ("services: {web: {image: x, networks: {default: {aliases: ['bad name']}}}}", "services.web.networks.default.aliases[0]", "invalid alias"),
        ("services: {web: {image: x}}\nnetworks: {n: {driver: macvlan}}", "networks.n.driver", "not supported"),
        ("services: {web: {image: x}}\nnetworks: {n: {external: yes please}}", "networks.n.external", "true or false"),
        ("services: {web: {image: x, networks: [3]}}", "services.web.networks[0]", "name of a network"),
    ],
)
def test_bad_networks_name_the_field(text: str, path: str, words: str) -> None:
    error = compose_error(text)
    assert error.path == path and words in str(error)


def test_expose_offers_ports_without_publishing_them() -> None:
    spec = web({"image": "x", "expose": [8080, "9090/udp", "8080"], "ports": ["18080:8080"]})
    assert spec.ports == [PortSpec(target=8080, published=18080), PortSpec(target=9090, protocol="udp")]
    error = web_error({"image": "x", "expose": ["80:80"]})
    assert error.path == "services.web.expose[0]" and "publish with `ports`" in str(error)
