"""The service keys that become engine options (user, hostname, ulimits, ...) and the older forms of deploy's
restart policy and resources (restart, mem_limit, cpus)."""

import pytest

from corral.compose import parse_compose
from corral.model.container import ContainerOptions, Logging, Ulimit
from corral.model.service import RestartPolicy
from tests.compose.compose_helpers import web, web_error, web_result

EVERY_KEY = {
    "image": "app",
    "user": "1000:1000",
    "working_dir": "/srv",
    "hostname": "web1",
    "domainname": "example.test",
    "cap_add": ["net_bind_service"],
    "cap_drop": ["ALL"],
    "sysctls": ["net.core.somaxconn=1024"],
    "ulimits": {"nproc": 512, "nofile": {"soft": 1024, "hard": 2048}},
    "init": True,
    "tmpfs": ["/run", "/cache:size=1m,mode=1777"],
    "read_only": True,
    "stop_signal": "SIGQUIT",
    "shm_size": "64m",
    "extra_hosts": ["db.test:10.1.2.3", "v6.test=::1"],
    "dns": "10.0.0.53",
    "dns_search": ["example.test"],
    "dns_opt": ["ndots:2"],
    "logging": {"driver": "json-file", "options": {"max-size": "1m", "max-file": 2}},
    "stdin_open": True,
    "tty": True,
    "pids_limit": 100,
    "security_opt": ["no-new-privileges:true"],
    "platform": "linux/amd64",
}


def test_every_engine_key_is_read_into_the_container_options() -> None:
    result = web_result(EVERY_KEY)
    assert result.warnings == []
    assert result.services[0].container == ContainerOptions(
        user="1000:1000",
        working_dir="/srv",
        hostname="web1",
        domainname="example.test",
        cap_add=["NET_BIND_SERVICE"],
        cap_drop=["ALL"],
        sysctls={"net.core.somaxconn": "1024"},
        ulimits={"nproc": Ulimit(soft=512, hard=512), "nofile": Ulimit(soft=1024, hard=2048)},
        init=True,
        tmpfs={"/run": "", "/cache": "size=1m,mode=1777"},
        read_only=True,
        stop_signal="SIGQUIT",
        shm_size=64 * 1024**2,
        extra_hosts={"db.test": "10.1.2.3", "v6.test": "::1"},
        dns=["10.0.0.53"],
        dns_search=["example.test"],
        dns_opt=["ndots:2"],
        logging=Logging(driver="json-file", options={"max-size": "1m", "max-file": "2"}),
        stdin_open=True,
        tty=True,
        pids_limit=100,
        security_opt=["no-new-privileges:true"],
        platform="linux/amd64",
    )


def test_a_service_without_them_asks_the_engine_for_nothing() -> None:
    assert web({"image": "app"}).container == ContainerOptions()


def test_a_changed_option_is_a_new_task_shape_so_it_rolls_out() -> None:
    before = web({"image": "app", "user": "1"})
    after = web({"image": "app", "user": "2"})
    assert before.task_shape() != after.task_shape()


def test_container_name_is_a_warning_saying_why() -> None:
    result = web_result({"image": "app", "container_name": "my-web"})
    assert any("services.web.container_name is ignored" in warning and "replicas" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    ("key", "value", "path", "words"),
    [
        ("working_dir", "srv", "services.web.working_dir", "absolute path"),
        ("user", "a b", "services.web.user", "invalid user"),
        ("hostname", "bad host", "services.web.hostname", "invalid host name"),
        ("cap_drop", ["NET RAW"], "services.web.cap_drop[0]", "invalid capability"),
        ("ulimits", {"nofile": {"soft": 10}}, "services.web.ulimits.nofile.hard", "is required"),
        ("ulimits", {"nofile": {"soft": 20, "hard": 10}}, "services.web.ulimits.nofile", "above the hard limit"),
        ("tmpfs", ["run"], "services.web.tmpfs[0]", "absolute path"),
        ("init", "yes", "services.web.init", "true or false"),
        ("shm_size", "lots", "services.web.shm_size", "invalid size"),
        ("extra_hosts", ["nohost"], "services.web.extra_hosts[0]", "HOST:ADDRESS"),
        ("stop_signal", "SIG TERM", "services.web.stop_signal", "invalid signal"),
        ("pids_limit", 0, "services.web.pids_limit", "positive"),
        ("platform", "amd64", "services.web.platform", "OS/ARCH"),
        ("restart", "sometimes", "services.web.restart", "unknown restart policy"),
        ("mem_limit", "1x", "services.web.mem_limit", "invalid size"),
    ],
)
def test_a_bad_value_is_refused_with_its_path(key: str, value: object, path: str, words: str) -> None:
    error = web_error({"image": "app", key: value})
    assert error.path == path and words in error.reason


@pytest.mark.parametrize(
    ("restart", "policy"),
    [
        ("no", RestartPolicy(condition="none")),
        ("always", RestartPolicy(condition="any")),
        ("unless-stopped", RestartPolicy(condition="any")),
        ("on-failure", RestartPolicy(condition="on-failure")),
        ("on-failure:3", RestartPolicy(condition="on-failure", max_attempts=3)),
    ],
)
def test_restart_becomes_the_restart_policy(restart: str, policy: RestartPolicy) -> None:
    assert web({"image": "app", "restart": restart}).restart_policy == policy


def test_a_bare_no_read_by_yaml_as_false_is_no() -> None:
    [spec] = parse_compose("services:\n  web:\n    image: app\n    restart: no\n", "app").services
    assert spec.restart_policy.condition == "none"


def test_deploy_restart_policy_wins_over_restart() -> None:
    spec = web({"image": "app", "restart": "no", "deploy": {"restart_policy": {"condition": "on-failure"}}})
    assert spec.restart_policy.condition == "on-failure"


def test_mem_limit_and_cpus_are_the_limits_unless_deploy_says_otherwise() -> None:
    spec = web({"image": "app", "mem_limit": "64m", "cpus": 0.5, "mem_reservation": "32m"})
    assert (spec.limits.memory, spec.limits.cpus, spec.reservations.memory) == (64 * 1024**2, 0.5, 32 * 1024**2)
    same = web({"image": "app", "mem_limit": "64m", "deploy": {"resources": {"limits": {"memory": "64M"}}}})
    assert same.limits.memory == 64 * 1024**2
    error = web_error({"image": "app", "cpus": 1, "deploy": {"resources": {"limits": {"cpus": 2}}}})
    assert error.path == "services.web.cpus" and "differs" in error.reason
    above = web_error({"image": "app", "mem_limit": "32m", "mem_reservation": "64m"})
    assert above.path == "services.web.mem_reservation"


def test_dangerous_capabilities_are_still_refused_by_the_policy() -> None:
    error = web_error({"image": "app", "cap_add": ["SYS_ADMIN"]})
    assert error.path == "services.web.cap_add[0]" and "root on every node" in error.reason
