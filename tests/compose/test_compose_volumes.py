"""Compose `volumes:`: top-level named volumes and each service's mounts (short and long form)."""

import textwrap

import pytest
import yaml

from corral.compose import parse_compose
from corral.compose.volumes import is_allowed
from corral.model.errors import InvalidSpec
from corral.model.volume import Mount

from compose_helpers import compose_error


def _volumes(service_volumes: object, top: object = None) -> list[Mount]:
    document: dict[str, object] = {"services": {"db": {"image": "img", "volumes": service_volumes}}}
    if top is not None:
        document["volumes"] = top
    return parse_compose(yaml.safe_dump(document, sort_keys=False), "shop").services[0].volumes


def _error(service_volumes: object, top: object = None) -> InvalidSpec:
    document: dict[str, object] = {"services": {"db": {"image": "img", "volumes": service_volumes}}}
    if top is not None:
        document["volumes"] = top
    return compose_error(yaml.safe_dump(document, sort_keys=False), "shop")


def test_short_and_long_forms() -> None:
    mounts = _volumes(
        [
            "data:/var/lib/db",
            "logs:/logs:ro",
            "/srv/site:/site:ro",
            {"type": "volume", "source": "data", "target": "/copy", "read_only": True, "volume": {"nocopy": True}},
            {"type": "bind", "source": "/srv/x/", "target": "/x/"},
            {"type": "tmpfs", "target": "/tmp/t", "tmpfs": {"size": "64m"}},
        ],
        {"data": None, "logs": {"name": "custom-logs", "driver": "local", "driver_opts": {"type": "tmpfs", "device": "tmpfs"},
                                "labels": ["a=b"], "x-corral-volume": {"sticky": False}}},
    )
    assert mounts == [
        Mount(type="volume", source="shop_data", target="/var/lib/db"),
        Mount(type="volume", source="custom-logs", target="/logs", read_only=True, sticky=False,
              driver_opts={"type": "tmpfs", "device": "tmpfs"}, labels={"a": "b"}),
        Mount(type="bind", source="/srv/site", target="/site", read_only=True),
        Mount(type="volume", source="shop_data", target="/copy", read_only=True, nocopy=True),
        Mount(type="bind", source="/srv/x", target="/x"),
        Mount(type="tmpfs", target="/tmp/t", tmpfs_size=64 * 1024 * 1024),
    ]


def test_external_volumes_keep_their_name_and_are_not_sticky() -> None:
    [mount] = _volumes(["shared:/shared"], {"shared": {"external": True}})
    assert (mount.source, mount.external, mount.sticky) == ("shared", True, False)
    [named] = _volumes(["shared:/shared"], {"shared": {"external": True, "name": "the-one"}})
    assert named.source == "the-one"


@pytest.mark.parametrize(
    ("service_volumes", "top", "path", "words"),
    [
        (["nope:/data"], {"data": None}, "services.db.volumes[0]", "unknown volume 'nope'"),
        (["/data"], None, "services.db.volumes[0]", "anonymous volume"),
        (["./site:/site"], None, "services.db.volumes[0]", "on your machine, not on the nodes"),
        (["/a/../etc:/x"], None, "services.db.volumes[0]", "'..'"),
        (["data:relative"], {"data": None}, "services.db.volumes[0]", "absolute path in the container"),
        (["data:/d:rx"], {"data": None}, "services.db.volumes[0]", "unknown mode"),
        (["data:/d", "/srv:/d"], {"data": None}, "services.db.volumes[1]", "already used by services.db.volumes[0]"),
        ([{"type": "nfs", "source": "x", "target": "/x"}], None, "services.db.volumes[0].type", "unknown mount type"),
        ([{"type": "tmpfs", "source": "x", "target": "/x"}], None, "services.db.volumes[0].source", "no source"),
        ([{"type": "volume", "target": "/x"}], None, "services.db.volumes[0].source", "non-empty string"),
        ([{"type": "tmpfs", "target": "/x", "tmpfs": {"size": "lots"}}], None, "services.db.volumes[0].tmpfs.size", ""),
        (["data:/d"], {"data": {"driver": "nfs"}}, "volumes.data.driver", "unsupported volume driver"),
        (["data:/d"], {"data": {"external": True, "labels": {"a": "b"}}}, "volumes.data", "created beforehand"),
        (["data:/d"], {"data": {"external": True, "x-corral-volume": {"sticky": False}}}, "volumes.data.x-corral-volume", "disposable"),
        (["data:/d"], {"data": {"x-corral-volume": {"sticky": "no"}}}, "volumes.data.x-corral-volume.sticky", "true or false"),
        (["data:/d"], {"data": {"x-corral-volume": {"size": 1}}}, "volumes.data.x-corral-volume.size", "unknown key"),
        (["data:/d"], {"data": {"name": "bad name"}}, "volumes.data", "invalid volume name"),
    ],
)
def test_bad_volumes_name_the_field(service_volumes: object, top: object, path: str, words: str) -> None:
    error = _error(service_volumes, top)
    assert error.path == path and words in error.reason, error


def test_unknown_mount_options_are_warned_about() -> None:
    text = textwrap.dedent("""
        services:
          db:
            image: img
            volumes:
              - {type: bind, source: /srv, target: /srv, bind: {propagation: rshared}, consistency: cached}
    """)
    assert parse_compose(text, "shop").warnings == [
        "services.db.volumes[0].consistency is ignored: corral does not support this option here"
    ]


def test_bind_mounts_only_under_allowed_directories() -> None:
    assert is_allowed("/srv/data/x", ["/srv/data"]) and is_allowed("/srv/data", ["/srv/data/"])
    assert not is_allowed("/srv/database", ["/srv/data"]) and not is_allowed("/etc", [])
    text = "services:\n  db:\n    image: img\n    volumes: ['/etc:/host-etc:ro', {type: bind, source: /srv/x, target: /x}]\n"
    assert len(parse_compose(text, "shop").services[0].volumes) == 2  # the CLI: the manager decides
    assert len(parse_compose(text, "shop", allow_bind=["/etc", "/srv"]).services[0].volumes) == 2
    with pytest.raises(InvalidSpec) as caught:
        parse_compose(text, "shop", allow_bind=["/srv"])
    assert caught.value.path == "services.db.volumes[0]"
    assert "'/etc'" in caught.value.reason and "--allow-bind" in caught.value.reason and "allowed: /srv" in caught.value.reason
    with pytest.raises(InvalidSpec, match="allowed: none"):
        parse_compose(text, "shop", allow_bind=[])
