"""The web UI's core in Firefox too (Debian's firefox-esr, headless, over its own WebDriver BiDi: tests/ui/firefox.py):
sign in from `corral ui --print-url`, the nodes (with their use) and a service appear, every page fits a phone's
width, and a viewer sees no action buttons. The rest of the UI's behaviour is in test_ui_browser.py (Chromium)."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, wait_until
from tests.ui import pages
from tests.ui.firefox import Firefox
from tests.ui.test_ui_browser import STACK, _login_url, ui_cluster  # noqa: F401  (ui_cluster: a fixture)

TASKS = "return document.querySelectorAll('tbody tr[data-task]').length"


@pytest.fixture
def firefox() -> Iterator[Firefox]:
    binary = shutil.which("firefox-esr")
    if binary is None:
        pytest.fail("the Firefox UI test needs Debian's firefox-esr: run `make setup`")
    browser = Firefox(binary)
    try:
        yield browser
    finally:
        browser.close()


def test_the_ui_in_firefox(ui_cluster: Cluster, firefox: Firefox, tmp_path: Path) -> None:
    cluster, run = ui_cluster, firefox.run
    compose = tmp_path / "compose.yaml"
    compose.write_text(STACK)
    cluster.cli("deploy", "-c", str(compose), "--name", "shop")
    cluster.wait_running("shop_web", 2)
    admin = (cluster.data_dir / "admin-token").read_text().strip()
    assert firefox.capabilities["browserName"] == "firefox"

    firefox.get(_login_url(cluster, admin))
    wait_until(lambda: {"node-1", "node-2"} <= set(run(pages.NODE_NAMES)), 30, what="the nodes in Firefox")
    wait_until(lambda: "2/2" in run(pages.SERVICE_REPLICAS), 20, what="the service in Firefox")
    wait_until(lambda: pages.measured_nodes(run) == {"node-1", "node-2"}, 20, what="the nodes' use in Firefox")
    assert "code=" not in firefox.url and "admin" in run(pages.WHO)
    firefox.screenshot(tmp_path / "firefox-cluster.png")

    firefox.set_viewport(390, 844)
    base = firefox.url.split("#")[0]
    for route, ready in (("#/", pages.NODE_NAMES), ("#/service/shop_web", TASKS), ("#/node/node-1", TASKS)):
        firefox.get(base + route)
        wait_until(lambda: run(ready), 20, what=f"{route} at a phone's width in Firefox")
        widths = run(pages.WIDTHS)
        assert widths["innerWidth"] == 390 and widths["page"] <= 0 and widths["brand"], (route, widths)
    firefox.set_viewport(1280, 800)

    viewer = cluster.cli("token", "create", "--role", "viewer", "--name", "ff-viewer", env={"CORRAL_TOKEN": admin}).stdout.strip().split()[-1]
    run("sessionStorage.clear(); return true")
    firefox.get(_login_url(cluster, viewer))
    wait_until(lambda: "viewer" in run(pages.WHO), 20, what="the viewer signed in, in Firefox")
    firefox.get(base + "#/service/shop_web")
    wait_until(lambda: run(TASKS) >= 2, 20, what="the viewer's service page in Firefox")
    assert run(pages.ACTION_BUTTONS) == 0
    firefox.get(base + "#/node/node-1")
    wait_until(lambda: "Node node-1" in run("return document.querySelector('#view h1').textContent"), 10, what="the viewer's node page")
    assert run(pages.ACTION_BUTTONS) == 0
