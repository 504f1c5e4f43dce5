"""`corral up`, `corral manager`, `corral agent`, `corral join-token`: running the cluster."""

import asyncio
import ipaddress
import logging
import os
import signal
import sys
import time
from collections.abc import Coroutine
from urllib.parse import urlsplit
from pathlib import Path
from typing import Any

import typer
import uvloop

from corral.agent.daemon import Agent, EngineFactory, machine_resources
from corral.agent.engines.files import DEFAULT_ROOT as DEFAULT_SECRETS_DIR
from corral.agent.engines.hollow import HollowTiming
from corral.agent.fleet import Fleet, FleetSettings
from corral.agent.mesh.settings import DATA_PATHS, DataPath
from corral.agent.settings import AgentSettings
from corral.cli import output
from corral.cli.output import fail
from corral.cli.output import duration as _duration
from corral.client import ApiError
from corral.compose.sizes import parse_bytes
from corral.manager.settings import ManagerSettings
from corral.model import Resources
from corral.model.limits import Limits
from corral.model.errors import CorralError, InvalidSpec
from corral.pki import CA_CERT_FILE, KeyMaterialError

DEFAULT_DATA_DIR = Path.home() / ".corral"


LeaseOption = typer.Option(ManagerSettings.node_lease, "--node-lease", help="seconds a heartbeat renews a node's lease for")
GraceOption = typer.Option(
    ManagerSettings.node_grace, "--node-grace", help="seconds past its lease before a node is down and its tasks are replaced"
)


NetworkOption = typer.Option(
    ManagerSettings.service_network, "--service-network", help="CIDR the services' virtual IPs come from (service to service by name)"
)


def _network(value: str) -> str:
    try:
        network = ipaddress.ip_network(value)
    except ValueError:
        fail(f"--service-network: invalid network {value!r}: expected e.g. 10.217.0.0/16")
    if network.version != 4 or network.num_addresses < 4 or network.is_loopback:
        fail(f"--service-network: {value} must be an IPv4 network of at least 4 addresses, not loopback")
    return str(network)


AllowBindOption = typer.Option(
    [], "--allow-bind", metavar="DIR", help="a host directory services may bind-mount paths under (repeatable; none by default)"
)


def _allow_bind(directories: list[str]) -> tuple[str, ...]:
    for directory in directories:
        if not directory.startswith("/"):
            fail(f"--allow-bind: {directory!r} must be an absolute directory")
    return tuple(directories)


AllowPrivilegedOption = typer.Option(
    False, "--allow-privileged",
    help="let deploys run privileged containers, the host's pid/ipc/uts namespaces, host devices and capabilities "
    "that reach the node (refused by default: a deploy must not be a way to become root on every node)",
)


MaxRequestOption = typer.Option(
    Limits.request_bytes, "--max-request-bytes", help="largest API request body (a compose file is sent in one)"
)
LimitOption = typer.Option(
    [], "--limit", metavar="NAME=N",
    help=f"change one bound on specs (repeatable; docs/api.md): {', '.join(n for n in Limits.names() if n != 'request_bytes')}",
)


def _limits(max_request_bytes: int, changes: list[str]) -> Limits:
    values: dict[str, int] = {"request_bytes": max_request_bytes}
    for change in changes:
        name, _, number = change.partition("=")
        if name not in Limits.names() or name == "request_bytes":
            fail(f"--limit: unknown bound {name!r}: expected one of {', '.join(n for n in Limits.names() if n != 'request_bytes')}")
        if not number.isdigit() or int(number) < 1:
            fail(f"--limit {name}: expected a positive whole number, not {number!r}")
        values[name] = int(number)
    if max_request_bytes < 1024:
        fail("--max-request-bytes: must be at least 1024")
    return Limits(**values)


MeshOption = typer.Option(
    "userspace", "--mesh",
    help="routing mesh data path: userspace (retries a dead replica) or kernel (iptables DNAT: faster, no retry)",
)

SecretsDirOption = typer.Option(
    DEFAULT_SECRETS_DIR, "--secrets-dir", help="where containers' secrets and configs are kept on this host (a tmpfs is mounted there if needed)"
)


def _mesh(value: str) -> DataPath:
    for path in DATA_PATHS:
        if value == path:
            return path
    fail(f"--mesh: unknown data path {value!r}: expected userspace or kernel")


TaskHistoryOption = typer.Option(
    ManagerSettings.task_history, "--history", min=0,
    help="ended tasks kept per slot, with their containers and logs (`service ps`, `service logs`)",
)
HistoryOption = typer.Option(
    ManagerSettings.store_history, "--store-history",
    help="store revisions kept for watches and `corral events --since` (older ones are compacted)",
)


def _history(value: int) -> int:
    if value < 1:
        fail(f"--store-history: must be at least 1 revision, got {value}")
    return value


StoreOption = typer.Option(
    "", "--store",
    help="where the cluster's state lives: etcd://HOST:PORT,HOST:PORT... with an optional /PREFIX (default: SQLite in --data-dir)",
)


EtcdCaOption = typer.Option(
    None, "--etcd-cacert", envvar="CORRAL_ETCD_CACERT", help="TLS to etcd: the CA that signed the etcd members' certificates"
)
EtcdCertOption = typer.Option(
    None, "--etcd-cert", envvar="CORRAL_ETCD_CERT", help="TLS to etcd: this manager's client certificate (etcd's --client-cert-auth)"
)
EtcdKeyOption = typer.Option(None, "--etcd-key", envvar="CORRAL_ETCD_KEY", help="TLS to etcd: the client certificate's private key")


def _store(value: str, cacert: Path | None = None, cert: Path | None = None, key: Path | None = None) -> str:
    """The store URL, with --etcd-cacert/--etcd-cert/--etcd-key folded in as its cacert/cert/key options."""
    tls = [(name, path) for name, path in (("cacert", cacert), ("cert", cert), ("key", key)) if path is not None]
    if tls and not value.startswith("etcd://"):
        fail(f"--etcd-{tls[0][0]}: TLS to etcd needs an etcd store (--store etcd://HOST:PORT,...)")
    if not value:
        return ""
    if value.startswith("sqlite://"):
        return value
    from urllib.parse import quote

    from corral.store.etcd import EtcdSettings  # the manager's imports, not `corral agent`'s (docs/performance.md)

    if tls:
        options = "&".join(f"{name}={quote(str(path.resolve()), safe='/')}" for name, path in tls)
        value += ("&" if "?" in value else "?") + options
    try:
        EtcdSettings.parse(value).verify()  # the TLS files too: refused before anything starts
    except InvalidSpec as err:
        fail(f"--store: {err.reason}")
    return value


RegistryOption = typer.Option(
    "127.0.0.1:5000", "--registry-listen", help="HOST:PORT of the image registry, or 'off' (off loopback: TLS, and `docker login` with an API token)"
)


def _registry_listen(value: str, disabled: bool) -> str | None:
    if disabled or value == "off":
        return None
    _listen(value, "--registry-listen")
    return value


InsecureOption = typer.Option(
    False, "--insecure", help="serve the API over plain HTTP (refused unless --listen is a loopback address)"
)
TlsCertOption = typer.Option(None, "--tls-cert", help="the API's certificate (PEM; default: one issued by the cluster CA)")
TlsKeyOption = typer.Option(None, "--tls-key", help="the key of --tls-cert (PEM)")
AdvertiseOption = typer.Option(
    [], "--advertise",
    help="another name or address clients reach the manager at (repeatable): in its certificate;"
    " a URL (https://HOST:PORT) is also where the other managers send agents and clients to",
)


def _advertise(values: list[str]) -> dict[str, Any]:
    """--advertise: names and addresses for the certificate, and at most one URL (whose host is one of the names)."""
    names, urls = [], []
    for value in values:
        if "://" not in value:
            names.append(value)
            continue
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            fail(f"--advertise: invalid URL {value!r}: expected https://HOST:PORT")
        urls.append(value.rstrip("/"))
        names.append(parts.hostname)
    if len(urls) > 1:
        fail(f"--advertise: give one URL, not {len(urls)}")
    return {"advertise": tuple(dict.fromkeys(names)), **({"advertise_url": urls[0]} if urls else {})}


CertExpiryOption = typer.Option("90d", "--cert-expiry", help="how long a node certificate is valid (e.g. 90d, 12h, 30m, 600s)")
AutolockOption = typer.Option(
    False, "--autolock",
    help="secrets' key-encryption key derived from a passphrase (CORRAL_UNLOCK_KEY, --unlock-key-file, or the prompt), "
    "never stored: the data dir alone decrypts nothing; turns autolock on for an existing cluster",
)
UnlockKeyFileOption = typer.Option(None, "--unlock-key-file", help="a file holding the autolock passphrase (implies --autolock)")


def _unlock_key(autolock: bool, key_file: Path | None) -> str | None:
    """The autolock passphrase: from --unlock-key-file, CORRAL_UNLOCK_KEY, or typed at a terminal; None without autolock."""
    if key_file is not None:
        try:
            passphrase = key_file.read_text().strip()
        except OSError as err:
            fail(f"--unlock-key-file: cannot read {key_file}: {err.strerror or err}")
    elif not autolock:
        return None
    elif os.environ.get("CORRAL_UNLOCK_KEY"):
        passphrase = os.environ["CORRAL_UNLOCK_KEY"]
    elif sys.stdin.isatty():
        passphrase = typer.prompt("autolock passphrase", hide_input=True)
    else:
        fail("--autolock needs the passphrase: set CORRAL_UNLOCK_KEY, give --unlock-key-file FILE, or run on a terminal")
    if len(passphrase) < 8:
        fail("the autolock passphrase must have at least 8 characters")
    return passphrase


def _tls(host: str, insecure: bool, cert: Path | None, key: Path | None) -> dict[str, Any]:
    """The manager's TLS settings; plain HTTP is allowed on a loopback address only."""
    if insecure:
        if not _is_loopback(host):
            fail(f"--insecure: refused for {host}: plain HTTP is allowed only on a loopback address (127.0.0.0/8, ::1, localhost)")
        if cert is not None or key is not None:
            fail("--insecure and --tls-cert/--tls-key: give one")
        return {"tls": False}
    if (cert is None) != (key is None):
        fail("--tls-cert and --tls-key: give both, or neither")
    for path, option in ((cert, "--tls-cert"), (key, "--tls-key")):
        if path is not None and not path.is_file():
            fail(f"{option}: no such file: {path}")
    return {"tls": True, "tls_cert": cert, "tls_key": key}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _positive(value: float, option: str, zero: bool = False) -> float:
    if value < 0 or (value == 0 and not zero) or value != value:
        fail(f"{option}: must be {'zero or more' if zero else 'more than 0'} seconds, got {value:g}")
    return value


def _stall_log(milliseconds: float) -> float | None:
    """--log-loop-stalls MS as seconds (0: off)."""
    if milliseconds < 0 or milliseconds != milliseconds:
        fail(f"--log-loop-stalls: must be zero (off) or more milliseconds, got {milliseconds:g}")
    return milliseconds / 1000 or None


def _listen(value: str, option: str = "--listen") -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"{option}: invalid address {value!r}: expected HOST:PORT")
    return host, int(port)


def _resources(cpus: float | None, memory: str | None) -> Resources | None:
    if cpus is None and memory is None:
        return None
    default = machine_resources()
    try:
        mem = parse_bytes(memory, "--memory") if memory else default.memory
    except InvalidSpec as err:
        fail(str(err))
    return Resources(cpus=cpus if cpus is not None else default.cpus, memory=mem)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def manager(
    context: typer.Context,
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="where the store and join token live"),
    listen: str = typer.Option("127.0.0.1:7070", "--listen", help="HOST:PORT of the API"),
    node_lease: float = LeaseOption,
    node_grace: float = GraceOption,
    service_network: str = NetworkOption,
    registry_listen: str = RegistryOption,
    no_registry: bool = typer.Option(False, "--no-registry", help="run no image registry"),
    store_history: int = HistoryOption,
    store: str = StoreOption,
    task_history: int = TaskHistoryOption,
    max_request_bytes: int = MaxRequestOption,
    limit: list[str] = LimitOption,
    insecure: bool = InsecureOption,
    tls_cert: Path | None = TlsCertOption,
    tls_key: Path | None = TlsKeyOption,
    advertise: list[str] = AdvertiseOption,
    cert_expiry: str = CertExpiryOption,
    allow_bind: list[str] = AllowBindOption,
    allow_privileged: bool = AllowPrivilegedOption,
    autolock: bool = AutolockOption,
    unlock_key_file: Path | None = UnlockKeyFileOption,
    name: str = typer.Option("manager", "--name", help="this manager's name among the managers of one etcd store"),
    log_loop_stalls: float = typer.Option(
        0.0, "--log-loop-stalls", metavar="MS", help="profiling: log the code behind each event-loop stall over MS ms"
    ),
    etcd_cacert: Path | None = EtcdCaOption,
    etcd_cert: Path | None = EtcdCertOption,
    etcd_key: Path | None = EtcdKeyOption,
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run a manager (the control plane) in the foreground. The API is HTTPS with the cluster CA's certificate.

    Several managers share one control plane on an etcd store (--store etcd://...): each with its own --name
    and --advertise URL, the same cluster CA and join token in their data dirs; one leads, elected through etcd."""
    if context.invoked_subcommand is not None:  # `corral manager ls`: not a manager to run
        return
    from corral.manager import runtime
    from corral.manager.cluster import TOKEN_FILE
    from corral.manager.server import Manager  # FastAPI, uvicorn, the store: imported by the commands that run a manager

    _logging(verbose)
    host, port = _listen(listen)
    settings = ManagerSettings(
        data_dir=data_dir, listen_host=host, listen_port=port, node_lease=_positive(node_lease, "--node-lease"),
        node_grace=_positive(node_grace, "--node-grace", zero=True),
        registry_listen=_registry_listen(registry_listen, no_registry),
        service_network=_network(service_network), store_history=_history(store_history), task_history=task_history,
        store_url=_store(store, etcd_cacert, etcd_cert, etcd_key), limits=_limits(max_request_bytes, limit), name=name, **_advertise(advertise),
        cert_expiry=_duration(cert_expiry, "--cert-expiry"), unlock_key=_unlock_key(autolock, unlock_key_file),
        allow_bind=_allow_bind(allow_bind), allow_privileged=allow_privileged,
        log_loop_stalls=_stall_log(log_loop_stalls),
        **_tls(host, insecure, tls_cert, tls_key),
    )

    async def run() -> None:
        mgr = Manager(settings)
        ctx = await mgr.start()
        output.console.print(f"corral manager {ctx.cluster_id} serving on {settings.url} (data in {data_dir})", highlight=False)
        output.console.print(f"cluster CA: {settings.ca_file} (the CLI: CORRAL_CA or --ca; agents pin it by the join token)", highlight=False)
        token_file = data_dir / TOKEN_FILE  # the token itself is never printed: this output often ends in a log
        output.console.print(f"join token: in {token_file} (`corral join-token --data-dir {data_dir}` prints it)", highlight=False)
        output.console.print(
            f"add a node: corral agent --manager {settings.url} --name NAME --address ADDRESS --token-file {token_file}",
            highlight=False,
        )
        output.console.print(f"the CLI: corral login {settings.url} --token-file {data_dir / 'admin-token'} --ca {settings.ca_file}", highlight=False)
        try:
            await _until_signalled()
        finally:
            await mgr.stop()

    runtime.tune()
    _run_daemon(run())


def agent(
    manager_url: str = typer.Option(
        "https://127.0.0.1:7070", "--manager", envvar="CORRAL_MANAGER",
        help="the manager's URL; over https the agent checks the manager's CA against the join token",
    ),
    name: str | None = typer.Option(None, "--name", help="the node's name"),
    address: str = typer.Option(..., "--address", help="the node's IP address; published ports bind here"),
    token: str | None = typer.Option(
        None, "--token", envvar="CORRAL_JOIN_TOKEN",
        help="the cluster's join token (visible to every user of this machine in `ps`: prefer --token-file or CORRAL_JOIN_TOKEN)",
    ),
    token_file: Path | None = typer.Option(None, "--token-file", help="a file holding the cluster's join token (e.g. the manager's DATA_DIR/join-token)"),
    engine: str = typer.Option("docker", "--engine", help="container engine driver: docker, or hollow (pretends)"),
    count: int = typer.Option(1, "--count", min=1, help="run this many nodes in this process (needs --engine hollow)"),
    name_prefix: str | None = typer.Option(None, "--name-prefix", help="nodes are named PREFIX1..PREFIXcount"),
    hollow_delay: str = typer.Option("50-200", "--hollow-delay", help="hollow engine: LOW-HIGH ms per operation"),
    secrets_dir: Path = SecretsDirOption,
    mesh: str = MeshOption,
    dns: bool = typer.Option(True, "--dns/--no-dns", help="serve service names to containers (DNS responder, per-stack networks, isolation rules)"),
    dns_upstream: list[str] = typer.Option(
        [], "--dns-upstream", help="resolver for other names, HOST or HOST:PORT (repeatable; default: /etc/resolv.conf)"
    ),
    cpus: float | None = typer.Option(None, "--cpus", help="CPUs to offer (default: all)"),
    memory: str | None = typer.Option(None, "--memory", help="memory to offer, e.g. 4g (default: all)"),
    label: list[str] = typer.Option([], "--label", help="node label KEY=VALUE (repeatable)"),
    state_dir: Path | None = typer.Option(
        None, "--state-dir", help="where the node keeps its key and certificate (0600; default: a private temporary dir)"
    ),
    metrics_port: int = typer.Option(
        7071, "--metrics-port", min=0, max=65535, help="port of the agent's /metrics (Prometheus, plain HTTP) on --address (0: none)",
    ),
    node_port: int = typer.Option(
        7072, "--node-port", min=0, max=65535,
        help="port of the node listener on --address, where the manager reads logs and runs exec (mutual TLS; 0: any free port)",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run a node agent in the foreground. SIGTERM stops the agent and leaves its containers running.

    With --engine hollow --count N --name-prefix P, runs N simulated nodes (no containers) in this
    one process, for scale tests.
    """
    _logging(verbose)
    _check_address(address)
    token = _join_token(token, token_file)
    if engine not in EngineFactory.KINDS:
        fail(f"--engine: unknown engine {engine!r}: expected one of {', '.join(EngineFactory.KINDS)}")
    if count > 1 and engine != "hollow":
        fail("--count: only hollow nodes share a process; a real node runs one agent (use --engine hollow)")
    if name_prefix is not None and name is not None:
        fail("--name and --name-prefix: give one (--name for one node, --name-prefix for a fleet)")
    if name is None and name_prefix is None:
        fail("--name: missing: name the node (or give --name-prefix with --count for a fleet)")
    try:
        timing = HollowTiming.parse_ms(hollow_delay)
    except ValueError as err:
        fail(f"--hollow-delay: {err}")
    for upstream in dns_upstream:
        host, _, port = upstream.partition(":")
        if not host or (port and not (port.isdigit() and 1 <= int(port) <= 65535)):
            fail(f"--dns-upstream: invalid resolver {upstream!r}: expected HOST or HOST:PORT")
    labels = {}
    for item in label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--label: invalid label {item!r}: expected KEY=VALUE")
        labels[key] = value
    settings = AgentSettings(
        manager_url=manager_url, name=name or str(name_prefix), address=address, token=token, engine=engine,
        resources=_resources(cpus, memory), labels=labels, state_dir=state_dir,
        # A hollow container changes only when asked to: listing it often would only burn CPU.
        poll_interval=10.0 if engine == "hollow" else 1.0,
        mesh_data_path=_mesh(mesh), dns=dns, dns_upstreams=tuple(dns_upstream) or None,
        node_port=node_port, metrics_port=metrics_port or None,
    )
    if name_prefix is not None:
        _run_daemon(_run_fleet(settings, FleetSettings(count=count, name_prefix=name_prefix), EngineFactory(engine, timing, secrets_dir)))
        return

    async def run() -> None:
        node = Agent(settings, EngineFactory(engine, timing, secrets_dir))
        try:
            await node.start()
        except ApiError as err:
            await node.client.close()
            fail(f"the manager refused node {name}: {err}" if err.status else str(err))
        print(f"corral agent {name} ({address}) joined {manager_url}", flush=True)  # (plain: an agent loads no rich)
        try:
            await _until_signalled()
        finally:
            await node.stop(remove_containers=False)

    _run_daemon(run())


async def _run_fleet(template: AgentSettings, fleet_settings: FleetSettings, factory: EngineFactory) -> None:
    fleet = Fleet(template, fleet_settings, factory)
    try:
        await fleet.start()
    except ApiError as err:
        await fleet.stop()
        fail(f"the manager refused a node of the fleet: {err}" if err.status else str(err))
    names = fleet_settings.names()
    print(
        f"corral agent fleet: {len(names)} {template.engine} nodes ({names[0]}..{names[-1]}) joined {template.manager_url}",
        flush=True,
    )
    try:
        await _until_signalled()
    finally:
        await fleet.stop()


def _join_token(token: str | None, token_file: Path | None) -> str:
    if token and token_file is not None:
        fail("--token and --token-file: give one")
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as err:
            fail(f"--token-file: cannot read {token_file}: {err.strerror or err}")
        if not token:
            fail(f"--token-file: {token_file} is empty")
    if not token:
        fail("missing join token: give --token-file PATH (or CORRAL_JOIN_TOKEN, or --token); `corral join-token` prints it on the manager")
    assert token is not None  # (`fail` exits)
    return token


def _check_address(address: str) -> None:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        fail(f"--address: {address!r} is not an IP address")


def up(
    nodes: int = typer.Option(3, "--nodes", min=1, max=200, help="how many nodes (agents) to run"),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="where the store and join token live"),
    listen: str = typer.Option("127.0.0.1:7070", "--listen", help="HOST:PORT of the API"),
    first_address: str = typer.Option("127.0.0.2", "--first-address", help="address of node-1; the next nodes count up"),
    node_cpus: float | None = typer.Option(None, "--node-cpus", help="CPUs each node offers (default: all)"),
    node_memory: str | None = typer.Option(None, "--node-memory", help="memory each node offers (default: all)"),
    node_lease: float = LeaseOption,
    node_grace: float = GraceOption,
    service_network: str = NetworkOption,
    registry_listen: str = RegistryOption,
    no_registry: bool = typer.Option(False, "--no-registry", help="run no image registry"),
    mesh: str = MeshOption,
    store_history: int = HistoryOption,
    store: str = StoreOption,
    task_history: int = TaskHistoryOption,
    max_request_bytes: int = MaxRequestOption,
    limit: list[str] = LimitOption,
    secrets_dir: Path = SecretsDirOption,
    insecure: bool = InsecureOption,
    cert_expiry: str = CertExpiryOption,
    allow_bind: list[str] = AllowBindOption,
    allow_privileged: bool = AllowPrivilegedOption,
    metrics_port: int = typer.Option(
        7071, "--metrics-port", min=0, max=65535, help="port of each agent's /metrics on its node address (0: none)",
    ),
    managers: int = typer.Option(
        1, "--managers", min=1, max=7,
        help="how many managers: more than 1 runs a local etcd cluster of as many members and each manager as its own "
        "process on the --listen port and the ports after it (3: survives losing one manager or etcd member)",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run a whole local cluster in the foreground: a manager and NODES agents on loopback addresses.

    Ctrl-C or SIGTERM stops everything and removes the containers it ran;
    what was deployed stays in the data dir, and the next `corral up` with it
    brings the stacks back.
    """
    from corral.manager import runtime
    from corral.manager.server import Manager

    _logging(verbose)
    host, port = _listen(listen)
    _check_address(first_address)
    base = ipaddress.ip_address(first_address)
    settings = ManagerSettings(
        data_dir=data_dir, listen_host=host, listen_port=port, node_lease=_positive(node_lease, "--node-lease"),
        node_grace=_positive(node_grace, "--node-grace", zero=True),
        registry_listen=_registry_listen(registry_listen, no_registry),
        service_network=_network(service_network), store_history=_history(store_history), store_url=_store(store), task_history=task_history,
        limits=_limits(max_request_bytes, limit), cert_expiry=_duration(cert_expiry, "--cert-expiry"),
        allow_bind=_allow_bind(allow_bind), allow_privileged=allow_privileged, **_tls(host, insecure, None, None),
    )
    data_path = _mesh(mesh)
    resources = _resources(node_cpus, node_memory)

    def local_agents(manager_urls: str, join_token: str) -> list[Agent]:
        return [
            Agent(
                AgentSettings(
                    manager_url=manager_urls, name=f"node-{i + 1}", address=str(base + i), token=join_token,
                    resources=resources, mesh_data_path=data_path, state_dir=data_dir / "nodes" / f"node-{i + 1}",
                    node_port=0,  # any free port: several local clusters may run at once
                    metrics_port=metrics_port or None,
                ),
                EngineFactory("docker", secrets_dir=secrets_dir),
            )
            for i in range(nodes)
        ]

    async def serve(agents: list[Agent], what: str) -> None:
        try:
            for node in agents:
                await node.start()
            output.console.print(
                f"corral is up: {what}, {nodes} nodes ({agents[0].settings.address}..{agents[-1].settings.address}), data in {data_dir}",
                highlight=False,
            )
            if data_dir.resolve() != DEFAULT_DATA_DIR.resolve():  # ~/.corral's admin token and CA: the CLI finds them itself
                output.console.print(f"the CLI: corral login {settings.url} --token-file {data_dir / 'admin-token'} --ca {settings.ca_file}", highlight=False)
            output.console.print("Press Ctrl-C (or send SIGTERM) to stop the cluster and its containers.")
            await _until_signalled()
        finally:
            output.console.print("stopping: agents and their containers", highlight=False)
            await asyncio.gather(*(node.stop(remove_containers=True) for node in agents), return_exceptions=True)

    runtime.tune()
    if managers > 1:
        _up_managers(managers, settings, store, _manager_args(
            node_lease, node_grace, service_network, store_history, task_history, max_request_bytes, limit, insecure, cert_expiry,
            allow_bind, allow_privileged,
        ), lambda urls, token: _run_daemon(serve(local_agents(urls, token), f"managers {urls}")))
        return

    async def run() -> None:
        mgr = Manager(settings)
        ctx = await mgr.start()
        try:
            await serve(local_agents(settings.url, ctx.join_token), f"manager {settings.url}")
        finally:
            await mgr.stop()

    _run_daemon(run())


def _manager_args(
    node_lease: float, node_grace: float, service_network: str, store_history: int, task_history: int, max_request_bytes: int,
    limits: list[str], insecure: bool, cert_expiry: str, allow_bind: list[str], allow_privileged: bool,
) -> list[str]:
    """`corral up`'s options that each manager of `--managers N` is given alike (checked by `up` already)."""
    args = [
        "--node-lease", str(node_lease), "--node-grace", str(node_grace), "--service-network", service_network,
        "--store-history", str(store_history), "--history", str(task_history), "--max-request-bytes", str(max_request_bytes),
        "--cert-expiry", cert_expiry,
    ]
    args += [item for limit in limits for item in ("--limit", limit)]
    args += [item for directory in allow_bind for item in ("--allow-bind", directory)]
    return args + (["--allow-privileged"] if allow_privileged else []) + (["--insecure"] if insecure else [])


def _up_managers(count: int, settings: ManagerSettings, store: str, manager_args: list[str], serve: Any) -> None:
    from corral.cli import ha_up
    from corral.store.etcd.local import EtcdNotInstalled

    if store and not store.startswith("etcd://"):
        fail(f"--managers {count}: several managers share an etcd store, not {store.split(':', 1)[0]} (omit --store: a local etcd is started)")
    registry = None
    if settings.registry_listen is not None:
        host, port = _listen(settings.registry_listen, "--registry-listen")
        registry = (host, port)
    plan = ha_up.HaPlan(
        managers=count, data_dir=settings.data_dir, host=settings.listen_host, port=settings.listen_port,
        scheme="https" if settings.tls else "http", registry=registry, store=store, manager_args=manager_args,
    )
    try:
        ha_up.run(plan, serve, lambda line: output.console.print(line, highlight=False))
    except (EtcdNotInstalled, ha_up.ManagerFailed, TimeoutError, RuntimeError, ValueError) as err:
        fail(str(err))


def _run_daemon(main: Coroutine[Any, Any, None]) -> None:
    """Run a daemon on uvloop: the mesh's proxy and the API do about 1.5x the work per CPU than on asyncio's loop."""
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main)
    except (OSError, CorralError) as err:  # a port taken, a store that does not answer, an autolocked cluster started without its passphrase...
        fail(str(err))


def join_token(
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="the manager's data dir"),
    rotate: bool = typer.Option(False, "--rotate", help="make a new token: the old one no longer joins new nodes"),
) -> None:
    """Print the join token agents need, read from the manager's data dir (it is not served over HTTP)."""
    from corral.manager.cluster import TOKEN_FILE, rotate_token
    from corral.pki import load_or_create_ca  # (cryptography: not for `corral agent`, which shares this module)

    path = data_dir / TOKEN_FILE
    if rotate:
        try:
            ca = load_or_create_ca(data_dir, time.time()) if (data_dir / CA_CERT_FILE).exists() else None
        except (KeyMaterialError, OSError) as err:
            fail(f"cannot read the cluster CA in {data_dir}: {err}")
        if ca is None:
            fail(f"no cluster CA in {data_dir}: has a manager run with --data-dir {data_dir}?")
        rotate_token(data_dir, ca.certificate)  # a running manager reads the file at every registration
    try:
        typer.echo(path.read_text().strip())
    except FileNotFoundError:
        fail(f"no join token at {path}: has a manager run with --data-dir {data_dir}?")
    except OSError as err:
        fail(f"cannot read the join token at {path}: {err.strerror or err} (it is readable only by the manager's user)")
