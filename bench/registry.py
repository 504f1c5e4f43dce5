"""Benchmark of the image registry: push and pull throughput of a 256 MiB image, and memory for a 1 GiB layer.

Builds an OCI image layout with one gzip layer of incompressible random bytes
(so no client recompresses it), then, round after round, pushes it with
`skopeo copy oci:... docker://...` and pulls it back (`skopeo copy
docker://... dir:...`) against two registries started fresh for the round
on free loopback ports (fresh, so no client cache turns an upload into a
cross-repository mount):

- corral's registry (`corral.registry.create_registry_app` under uvicorn, in a subprocess),
- Debian's reference registry (`docker-registry`, Docker's distribution 2.8), the baseline.

Figures are medians over the rounds, in MB/s (10^6 bytes) of image bytes,
and the ratio corral / docker-registry (above 1: corral is faster). Then a
1 GiB blob is streamed up (chunked PATCH) and down through corral's registry
alone, and the registry process's peak resident memory (VmHWM) is reported
against its resident memory before.

    .venv/bin/python bench/registry.py                 # 3 rounds, 256 MiB, then the 1 GiB layer
    .venv/bin/python bench/registry.py --rounds 5 --size-mib 128 --big-mib 0

The last line printed is one JSON object with the figures.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before serving")
        try:
            if httpx.get(url + "/v2/", timeout=1).status_code in (200, 401):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start serving on {url}")


class Registry:
    """One registry process on a free loopback port with its own storage dir; stopped by its PID."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=work))
        if kind == "corral":
            code = (
                "import sys, uvicorn; from pathlib import Path; from corral.registry import create_registry_app; "
                "uvicorn.run(create_registry_app(Path(sys.argv[1])), host='127.0.0.1', port=int(sys.argv[2]), log_level='error')"
            )
            command = [PYTHON, "-c", code, str(self.dir / "data"), str(self.port)]
        else:
            config = self.dir / "config.yml"
            config.write_text(
                "version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\n"
                f"storage: {{filesystem: {{rootdirectory: {self.dir / 'data'}}}, delete: {{enabled: true}}}}\n"
                f"http: {{addr: '{self.address}'}}\n"
            )
            command = ["docker-registry", "serve", str(config)]
        self.proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(self.url, self.proc, kind)

    def rss(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def build_image(layout: Path, size: int) -> int:
    """An OCI layout with one gzip layer holding `size` random bytes; returns the image's bytes."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("random.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    layer = gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "config": {}}).encode()

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return "sha256:" + digest

    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(layer), "size": len(layer)}],
    }).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": put(manifest), "size": len(manifest),
                                                 "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return len(layer) + len(config) + len(manifest)


def timed(*command: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return elapsed


def round_trip(kind: str, work: Path, layout: Path, image_bytes: int) -> tuple[float, float, int]:
    """Push then pull the image through a fresh registry; MB/s each way, and the registry's peak RSS."""
    registry = Registry(kind, work)
    pulled = work / f"pulled-{kind}"
    try:
        target = f"docker://{registry.address}/bench/image:1"
        push = timed("skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:bench", target)
        pull = timed("skopeo", "copy", "--quiet", "--src-tls-verify=false", target, f"dir:{pulled}")
        peak = registry.rss("VmHWM")
    finally:
        registry.stop()
        shutil.rmtree(pulled, ignore_errors=True)
    return image_bytes / push / 1e6, image_bytes / pull / 1e6, peak


def pseudo_random(size: int, piece: int = 1 << 20) -> Iterator[bytes]:
    block = os.urandom(piece)
    sent = 0
    counter = 0
    while sent < size:
        counter += 1
        chunk = counter.to_bytes(8, "little") + block[8:]
        chunk = chunk[: size - sent]
        sent += len(chunk)
        yield chunk


def big_layer(work: Path, size: int) -> dict[str, float]:
    """Stream a `size`-byte blob up (three chunked PATCHes) and down; the registry's memory before and at peak."""
    registry = Registry("corral", work)
    try:
        before = registry.rss()
        digest = hashlib.sha256()
        with httpx.Client(base_url=registry.url, timeout=600) as client:
            location = client.post("/v2/bench/big/blobs/uploads/").headers["Location"]
            start = time.perf_counter()
            third = size // 3
            offset = 0
            for part in (third, third, size - 2 * third):
                def body(part: int = part) -> Iterator[bytes]:
                    for chunk in pseudo_random(part):
                        digest.update(chunk)
                        yield chunk
                sent = client.patch(location, content=body(), headers={"Content-Range": f"{offset}-{offset + part - 1}"})
                assert sent.status_code == 202, sent.text
                offset += part
            done = client.put(location, params={"digest": "sha256:" + digest.hexdigest()})
            assert done.status_code == 201, done.text
            push = time.perf_counter() - start
            start = time.perf_counter()
            check = hashlib.sha256()
            with client.stream("GET", done.headers["Location"]) as response:
                for chunk in response.iter_bytes(1 << 20):
                    check.update(chunk)
            pull = time.perf_counter() - start
            assert check.hexdigest() == digest.hexdigest(), "pulled bytes differ"
        peak = registry.rss("VmHWM")
    finally:
        registry.stop()
    return {"big_layer_mib": size / 2**20, "big_push_mb_s": size / push / 1e6, "big_pull_mb_s": size / pull / 1e6,
            "big_rss_before_mib": before / 2**20, "big_peak_rss_mib": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=256, help="random bytes in the image's layer")
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the big-layer memory test (0: skip)")
    args = parser.parse_args()
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: run scripts/setup.sh")
    work = Path(tempfile.mkdtemp(prefix="corral-bench-registry-"))
    try:
        layout = work / "layout"
        image_bytes = build_image(layout, args.size_mib * 2**20)
        print(f"image: {image_bytes / 2**20:.1f} MiB (one gzip layer of random bytes), {args.rounds} rounds, skopeo as the client")
        figures: dict[str, list[float]] = {f"{k}_{d}": [] for k in ("corral", "baseline") for d in ("push", "pull", "peak")}
        for n in range(args.rounds):
            for kind, key in (("corral", "corral"), ("docker-registry", "baseline")):
                push, pull, peak = round_trip(kind, work, layout, image_bytes)
                figures[f"{key}_push"].append(push)
                figures[f"{key}_pull"].append(pull)
                figures[f"{key}_peak"].append(peak / 2**20)
                print(f"  round {n + 1} {kind:16} push {push:7.1f} MB/s  pull {pull:7.1f} MB/s  peak RSS {peak / 2**20:6.1f} MiB")
        med = {key: statistics.median(values) for key, values in figures.items()}
        result: dict[str, float] = {
            "image_mib": image_bytes / 2**20, "rounds": args.rounds,
            "corral_push_mb_s": med["corral_push"], "corral_pull_mb_s": med["corral_pull"],
            "baseline_push_mb_s": med["baseline_push"], "baseline_pull_mb_s": med["baseline_pull"],
            "push_ratio": med["corral_push"] / med["baseline_push"], "pull_ratio": med["corral_pull"] / med["baseline_pull"],
            "corral_peak_rss_mib": med["corral_peak"], "baseline_peak_rss_mib": med["baseline_peak"],
        }
        print(f"push: corral {result['corral_push_mb_s']:.1f} MB/s, docker-registry {result['baseline_push_mb_s']:.1f} MB/s, "
              f"ratio {result['push_ratio']:.2f}")
        print(f"pull: corral {result['corral_pull_mb_s']:.1f} MB/s, docker-registry {result['baseline_pull_mb_s']:.1f} MB/s, "
              f"ratio {result['pull_ratio']:.2f}")
        if args.big_mib > 0:
            big = big_layer(work, args.big_mib * 2**20)
            result.update(big)
            print(f"big layer {args.big_mib} MiB through corral: push {big['big_push_mb_s']:.1f} MB/s, pull {big['big_pull_mb_s']:.1f} MB/s, "
                  f"registry RSS {big['big_rss_before_mib']:.1f} MiB before, peak {big['big_peak_rss_mib']:.1f} MiB")
        print(json.dumps({k: round(v, 2) for k, v in result.items()}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
