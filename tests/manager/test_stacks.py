"""stacks.plan_deploy: what a stack deploy creates, updates, keeps and prunes."""

import pytest

from corral.manager.stacks import plan_deploy, updated
from corral.model import Service, ServiceSpec
from corral.model.errors import CorralError

from factories import make_spec

NOW = 500.0


def stored(name: str, stack: str = "app", version: int = 3, **fields: object) -> Service:
    return Service(spec=make_spec(name, stack=stack, **fields), version=version, created_at=1.0, updated_at=2.0)


def existing(*services: Service) -> dict[str, Service]:
    return {s.name: s for s in services}


def test_new_services_are_created_at_version_one() -> None:
    plan = plan_deploy({}, "app", [make_spec("web", stack="app"), make_spec("db", stack="app")], NOW, prune=False)
    assert [s.name for s in plan.create] == ["web", "db"]
    assert all(s.version == 1 and s.created_at == NOW and s.updated_at == NOW for s in plan.create)
    assert plan.update == [] and plan.unchanged == [] and plan.remove == []


def test_identical_spec_is_unchanged() -> None:
    web = stored("web")
    plan = plan_deploy(existing(web), "app", [make_spec("web", stack="app")], NOW, prune=True)
    assert plan.unchanged == ["web"]
    assert plan.create == [] and plan.update == [] and plan.remove == []


def test_image_change_bumps_the_version() -> None:
    web = stored("web", version=3)
    plan = plan_deploy(existing(web), "app", [make_spec("web", stack="app", image="nginx:2")], NOW, prune=False)
    [new] = plan.update
    assert new.version == 4
    assert new.spec.image == "nginx:2"
    assert new.created_at == 1.0 and new.updated_at == NOW


def test_replicas_only_change_keeps_the_version() -> None:
    web = stored("web", version=3, replicas=1)
    plan = plan_deploy(existing(web), "app", [make_spec("web", stack="app", replicas=5)], NOW, prune=False)
    [new] = plan.update
    assert new.version == 3 and new.spec.replicas == 5 and new.updated_at == NOW


def test_service_labels_only_change_keeps_the_version() -> None:
    web = stored("web", version=3)
    spec = make_spec("web", stack="app", service_labels={"team": "x"})
    [new] = plan_deploy(existing(web), "app", [spec], NOW, prune=False).update
    assert new.version == 3


def test_container_label_change_bumps_the_version() -> None:
    web = stored("web", version=3)
    spec = make_spec("web", stack="app", labels={"team": "x"})
    [new] = plan_deploy(existing(web), "app", [spec], NOW, prune=False).update
    assert new.version == 4


def test_updated_does_not_modify_the_stored_service() -> None:
    web = stored("web", version=3)
    updated(web, make_spec("web", stack="app", image="nginx:9"), NOW)
    assert web.version == 3 and web.spec.image == "nginx:1"


def test_prune_removes_only_this_stacks_missing_services() -> None:
    services = existing(stored("web"), stored("old"), stored("older"), stored("theirs", stack="other"), stored("lone", stack=""))
    plan = plan_deploy(services, "app", [make_spec("web", stack="app")], NOW, prune=True)
    assert plan.remove == ["old", "older"]
    assert plan.unchanged == ["web"]


def test_without_prune_nothing_is_removed() -> None:
    plan = plan_deploy(existing(stored("web"), stored("old")), "app", [make_spec("web", stack="app")], NOW, prune=False)
    assert plan.remove == []


def test_prune_with_an_empty_file_removes_the_whole_stack() -> None:
    plan = plan_deploy(existing(stored("a"), stored("b")), "app", [], NOW, prune=True)
    assert plan.remove == ["a", "b"]


def test_deploy_does_not_take_over_a_service_of_another_stack() -> None:
    theirs = stored("a_b_c", stack="a_b")
    try:
        plan = plan_deploy(existing(theirs), "a", [make_spec("a_b_c", stack="a", image="evil:1")], NOW, prune=False)
    except CorralError:
        return  # refusing the deploy is a fine answer too
    assert plan.update == []


def test_a_published_port_belongs_to_one_service() -> None:
    from corral.model import PortSpec
    from corral.model.errors import InvalidSpec

    def spec(name: str, *published: int, protocol: str = "tcp") -> ServiceSpec:
        ports = [PortSpec(target=80, published=p, protocol=protocol) for p in published]
        return ServiceSpec(name=name, stack=name.split("_")[0], image="x", ports=ports)

    existing = {"a_web": Service(spec=spec("a_web", 8080), created_at=0, updated_at=0)}
    with pytest.raises(InvalidSpec) as caught:
        plan_deploy(existing, "b", [spec("b_web", 8080)], 1.0, prune=False)
    assert caught.value.path == "services.web.ports[0]"
    assert "port 8080/tcp is already published by service a_web" in str(caught.value)
    with pytest.raises(InvalidSpec):
        plan_deploy({}, "b", [spec("b_web", 9000), spec("b_api", 9000)], 1.0, prune=False)
    with pytest.raises(InvalidSpec):
        plan_deploy({}, "b", [spec("b_web", 9000, 9000)], 1.0, prune=False)
    # the same number over UDP is another port; a stack may move its own port between its services
    plan_deploy(existing, "b", [spec("b_dns", 8080, protocol="udp")], 1.0, prune=False)
    plan_deploy(existing, "a", [spec("a_api", 8080)], 1.0, prune=True)
    plan_deploy(existing, "a", [spec("a_web", 8080)], 1.0, prune=False)


def test_new_services_get_distinct_vips_and_keep_them() -> None:
    from corral.model.errors import Conflict

    plan = plan_deploy({}, "app", [make_spec("app_web", stack="app"), make_spec("app_db", stack="app")], NOW, prune=False, service_network="10.9.0.0/29")
    assert [s.vip for s in plan.create] == ["10.9.0.2", "10.9.0.3"]
    stored = {s.name: s for s in plan.create}
    again = plan_deploy(stored, "app", [make_spec("app_web", stack="app", image="nginx:2"), make_spec("app_db", stack="app"), make_spec("app_q", stack="app")], NOW, prune=False, service_network="10.9.0.0/29")
    assert [s.vip for s in again.update] == ["10.9.0.2"] and [s.vip for s in again.create] == ["10.9.0.4"]
    with pytest.raises(Conflict):
        plan_deploy({}, "app", [make_spec(f"app_s{i}", stack="app") for i in range(6)], NOW, prune=False, service_network="10.9.0.0/29")


def test_host_mode_ports_may_share_a_number_but_not_with_ingress() -> None:
    from corral.model import PortSpec
    from corral.model.errors import InvalidSpec

    def spec(name: str, mode: str) -> ServiceSpec:
        return ServiceSpec(name=name, stack="s", image="x", ports=[PortSpec(target=80, published=9000, mode=mode)])

    plan_deploy({}, "s", [spec("s_a", "host"), spec("s_b", "host")], 1.0, prune=False)
    with pytest.raises(InvalidSpec):
        plan_deploy({}, "s", [spec("s_a", "host"), spec("s_b", "ingress")], 1.0, prune=False)
