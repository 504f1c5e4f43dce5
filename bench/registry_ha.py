"""What a push costs when the registry copies it to the other managers before acknowledging it (issue 18).

One etcd member on loopback and `corral manager` processes with their registries (the control-plane harness of
the e2e tests). An OCI image with one random gzip layer (bench/registry.py's `build_image`) is pushed with
`skopeo copy oci:... docker://...` to a fresh repository each round, first through a manager that is alone
(the baseline: one copy, as a single manager), then, with a new image each round (so that no push is a mount), after two more managers join, through the same manager
(each push is on all three when skopeo returns). Then the image is pulled through a fourth manager that
joined after the pushes (it fetches from a peer) and through one that holds it. Medians over the rounds.

    .venv/bin/python bench/registry_ha.py --rounds 3 --size-mib 64

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.cluster import free_port  # noqa: E402
from tests.e2e.control_plane import ControlPlane, ManagerProcess  # noqa: E402
from tests.tls import admin_token  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_registry", Path(__file__).with_name("registry.py"))
assert _spec is not None and _spec.loader is not None
bench_registry = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_registry)


def push(layout: Path, registry: str, repo: str, creds: str) -> float:
    return float(bench_registry.timed(
        "skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:bench", f"docker://{registry}/{repo}:1",
    ))


def pull(registry: str, repo: str, creds: str, target: Path) -> float:
    return float(bench_registry.timed(
        "skopeo", "copy", "--quiet", "--src-tls-verify=false", "--src-creds", creds, f"docker://{registry}/{repo}:1", f"dir:{target}",
    ))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-registry-ha-") as work_dir:
        work = Path(work_dir)
        # A new image per push: skopeo remembers where it pushed a blob and would mount it instead of uploading it.
        layouts = [work / f"layout{i}" for i in range(2 * args.rounds)]
        image_bytes = [bench_registry.build_image(layout, args.size_mib * 1024 * 1024) for layout in layouts][0]
        plane = ControlPlane.create(work / "plane")
        try:
            registries = {name: f"127.0.0.1:{free_port()}" for name in ("m1", "m2", "m3", "m4")}
            m1 = plane.start_manager("m1", registry=registries["m1"])
            creds = f"corral:{admin_token(m1.data_dir)}"
            alone = [push(layouts[i], registries["m1"], f"alone/r{i}", creds) for i in range(args.rounds)]
            joined: list[ManagerProcess] = [plane.start_manager(name, seed=m1, registry=registries[name]) for name in ("m2", "m3")]
            three = [push(layouts[args.rounds + i], registries["m1"], f"three/r{i}", creds) for i in range(args.rounds)]
            assert all((m.data_dir / "registry" / "repositories" / "three" / f"r{args.rounds - 1}").exists() for m in joined)
            plane.start_manager("m4", seed=m1, registry=registries["m4"])
            fetched = [pull(registries["m4"], f"three/r{i}", creds, work / f"f{i}") for i in range(args.rounds)]
            local = [pull(registries["m2"], f"three/r{i}", creds, work / f"l{i}") for i in range(args.rounds)]
        finally:
            plane.cleanup()
    mb = image_bytes / 1e6
    figures = {
        "image_mb": round(mb, 1),
        "push_alone_s": round(statistics.median(alone), 3),
        "push_three_managers_s": round(statistics.median(three), 3),
        "push_ratio": round(statistics.median(three) / statistics.median(alone), 2),
        "pull_held_s": round(statistics.median(local), 3),
        "pull_fetched_from_peer_s": round(statistics.median(fetched), 3),
        "pull_ratio": round(statistics.median(fetched) / statistics.median(local), 2),
    }
    print(f"push {mb:.0f} MB through a manager alone: {figures['push_alone_s']} s; with two peers taking copies: "
          f"{figures['push_three_managers_s']} s ({figures['push_ratio']}x)")
    print(f"pull through a manager holding it: {figures['pull_held_s']} s; through one that fetches it from a peer: "
          f"{figures['pull_fetched_from_peer_s']} s ({figures['pull_ratio']}x)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
