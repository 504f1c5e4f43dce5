"""Benchmark of the web UI in a real browser: first paint of a large cluster, and a burst of task changes.

Starts a manager and hollow nodes (`corral agent --engine hollow`), deploys `--tasks` replicas over
`--services` services, then opens the UI in Debian's headless chromium (through chromium-driver) with a
one-time login link and reads the page's own timings (`window.corralTimings`, performance.now() in ms):

- first paint: from the moment the page's data (nodes, services, tasks) has arrived until the cluster page
  is built and laid out (goal: under 1 s at 1,000 nodes and 20,000 tasks); the baseline, measured in the
  same page, is the time the data itself took to arrive from the sign-in;
- a burst: one service scaled up by `--burst` replicas (each new task is created, then runs: about two
  changes each); the time until the page shows them all running, the number of redraws, the longest
  redraw (the page is unresponsive during one) and the longest gap between animation frames the browser
  saw in that window (its responsiveness).

    .venv/bin/python bench/ui.py                                  # 1,000 nodes, 20,000 tasks, burst of 1,000
    .venv/bin/python bench/ui.py --nodes 100 --tasks 2000 --burst 200

Every process is stopped by PID at the end and the temporary directory removed; the last line printed is
one JSON object with the figures.
"""

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import CORRAL, compose, free_port, stop, wait_until  # noqa: E402  (bench/cluster.py)

from corral.pki import client_context  # noqa: E402

FRAME_WATCH = """
window.frameGaps = [];
let last = performance.now();
function tick(now) { window.frameGaps.push([now, now - last]); last = now; requestAnimationFrame(tick); }
requestAnimationFrame(tick);
"""


def browser() -> webdriver.Chrome:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise SystemExit("bench/ui.py needs Debian's chromium and chromium-driver (`make setup` installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(flag)
    options.accept_insecure_certs = True
    return webdriver.Chrome(options=options, service=Service(driver))


async def run(args: argparse.Namespace, workdir: Path, procs: list[subprocess.Popen]) -> dict:
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    data = workdir / "data"
    procs.append(subprocess.Popen(
        [*CORRAL, "manager", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", "--no-registry"],
        stdout=open(workdir / "manager.log", "w"), stderr=subprocess.STDOUT,
    ))
    for _ in range(600):
        if (data / "admin-token").exists() and (data / "join-token").exists():
            break
        await asyncio.sleep(0.1)
    admin = (data / "admin-token").read_text().strip()
    headers = {"Authorization": f"Bearer {admin}"}
    async with httpx.AsyncClient(base_url=url, timeout=120, verify=client_context((data / "ca.pem").read_bytes()), headers=headers) as api:
        await wait_until(lambda: api.get("/v1/info"), 60, "the manager")
        per = args.nodes // 2
        for p, count in enumerate((per, args.nodes - per)):
            procs.append(subprocess.Popen(
                [*CORRAL, "agent", "--manager", url, "--token", (data / "join-token").read_text().strip(), "--engine", "hollow",
                 "--count", str(count), "--name-prefix", f"hollow-{p}-", "--address", "127.0.0.1", "--cpus", "16", "--memory", "64g",
                 "--label", "kind=hollow"],  # bench/cluster.py's compose constrains some services to it
                stdout=open(workdir / f"agents-{p}.log", "w"), stderr=subprocess.STDOUT,
            ))

        async def registered() -> bool:
            return bool((await api.get("/v1/info")).json()["nodes"] >= args.nodes)

        await wait_until(registered, 300, f"{args.nodes} nodes", every=1.0)
        deployed = await api.post("/v1/stacks/bench/deploy", json={"compose": compose(args.tasks, args.services)})
        deployed.raise_for_status()

        async def all_running(want: int) -> bool:
            tasks = (await api.get("/v1/tasks")).json()
            return sum(1 for t in tasks if t["state"] == "running") >= want

        await wait_until(lambda: all_running(args.tasks), 600, f"{args.tasks} tasks running", every=2.0)
        code = (await api.post("/v1/ui/codes")).json()

        chrome = browser()
        try:
            began = time.monotonic()
            chrome.get(url + code["path"])
            timings = None
            while time.monotonic() - began < 120:
                timings = chrome.execute_script("return window.corralTimings")
                if timings and timings["firstPaintAt"] is not None:
                    break
                await asyncio.sleep(0.1)
            assert timings and timings["firstPaintAt"] is not None, "the UI never drew the cluster"
            navigation_start = 0.0  # performance.now() counts from the page's navigation
            data_ms = timings["dataAt"] - navigation_start
            paint_ms = timings["firstPaintAt"] - timings["dataAt"]
            print(f"first paint: data arrived {data_ms:.0f} ms after navigation, page drawn {paint_ms:.0f} ms later")

            chrome.execute_script(FRAME_WATCH)
            service = "bench_s0"
            current = (await api.get(f"/v1/services/{service}")).json()["replicas"]
            want_text = f"{current + args.burst}/{current + args.burst}"
            burst_at = chrome.execute_script("return performance.now()")
            (await api.post(f"/v1/services/{service}/scale", json={"replicas": current + args.burst})).raise_for_status()
            shown_at = None
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                shown = chrome.execute_script(
                    "const c = document.querySelector(`tr[data-service='bench_s0'] td:nth-child(2)`);"
                    "return c && c.textContent === arguments[0] ? performance.now() : null", want_text)
                if shown is not None:
                    shown_at = shown
                    break
                await asyncio.sleep(0.2)
            figures = chrome.execute_script("return [window.corralTimings.draws, window.frameGaps]")
        finally:
            chrome.quit()
    draws = [d for d in figures[0] if d[0] >= burst_at]
    gaps = [g[1] for g in figures[1] if g[0] >= burst_at and (shown_at is None or g[0] <= shown_at)]
    result = {
        "nodes": args.nodes, "tasks": args.tasks, "burst": args.burst,
        "data_arrived_ms": round(data_ms), "first_paint_ms": round(paint_ms),
        "burst_shown_ms": None if shown_at is None else round(shown_at - burst_at),
        "burst_redraws": len(draws),
        "burst_redraw_p50_ms": round(statistics.median(d[1] for d in draws)) if draws else None,
        "burst_redraw_max_ms": round(max(d[1] for d in draws)) if draws else None,
        "burst_frame_gap_max_ms": round(max(gaps)) if gaps else None,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="corral-bench-ui-"))
    procs: list[subprocess.Popen] = []
    try:
        result = asyncio.run(run(args, workdir, procs))
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
