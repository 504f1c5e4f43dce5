"""The web UI in a real browser (Debian's chromium, headless, through chromium-driver) against a real cluster:
sign in from `corral ui --print-url`, watch nodes and services appear, each node's CPU and memory used (asked
of the top route alone, again and again) beside its reservations, scale from the UI and see the new tasks
without a reload, kill a container and see its task fail and be replaced, a viewer sees no actions, and each
page fits a phone's width (390x844). Screenshots of each page at 1280x800 go to docs/ui/."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.e2e.cluster import Cluster, remove_containers, wait_until
from tests.ui import pages

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"  # written there with CORRAL_SCREENSHOTS=docs
STACK = """
services:
  web:
    image: corral-demo:latest
    ports: ["8080"]
    stop_grace_period: 1s
    deploy: {replicas: 2}
"""

TALK = """
services:
  talk:
    image: corral-demo:latest
    command: ["sh", "-c", "while true; do echo tick-$$(date +%s); sleep 1; done"]
    stop_grace_period: 1s
"""


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail("the UI tests need Debian's chromium and chromium-driver: run `make setup`")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(flag)
    options.accept_insecure_certs = True  # the cluster CA is not in the browser's store; the CLI pins it instead
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def ui_cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path / "cluster", nodes=2, first_address="127.0.0.41")
    try:
        yield running.start()
    finally:
        running.cleanup()
        if running.cluster_id:
            remove_containers(running.cluster_id)


def _login_url(cluster: Cluster, token: str) -> str:
    return cluster.cli("ui", "--print-url", env={"CORRAL_TOKEN": token}).stdout.strip()


def _open(browser: webdriver.Chrome, url: str) -> None:
    """Load the UI at `url` until its script has run. Chromium drops the loads in flight when the host's network
    interfaces change (net::ERR_NETWORK_CHANGED), and the cluster under test makes interfaces on this same host
    (each container's veth); a browser on another machine would not see that. The login code is spent by the
    script, so loading the same link again is safe until then."""

    def loaded() -> bool:
        browser.get(url)
        return wait_until(lambda: browser.execute_script("return window.corralTimings !== undefined"), 10, 0.2, what="the UI's script") is True

    wait_until(loaded, 45, 0.5, what=f"the UI to load from {url}")


def _texts(browser: webdriver.Chrome, css: str) -> list[str]:
    try:
        return [el.text for el in browser.find_elements(By.CSS_SELECTOR, css)]
    except WebDriverException:  # the element was redrawn while read: ask again
        return []


def _cells(browser: webdriver.Chrome, state: str) -> int:
    return len(browser.find_elements(By.CSS_SELECTOR, f".placement .cell[data-state={state}]"))


def _click(browser: webdriver.Chrome, by: str, what: str) -> None:
    """Find and click, again if the page redrew the element in between (a live page redraws on events)."""

    def click() -> bool:
        browser.find_element(by, what).click()
        return True

    wait_until(click, 10, 0.1, what=f"a click on {what}")


def _scale(browser: webdriver.Chrome, value: str) -> None:
    """Type `value` into the service page's replicas and confirm the scale, again if the page redrew meanwhile (a
    redraw puts the service's own value back: the confirmation's question says which number it will send)."""

    def attempt() -> bool:
        replicas = browser.find_element(By.ID, "scale-replicas")
        replicas.clear()
        replicas.send_keys(value)
        browser.find_element(By.ID, "scale").click()
        wait_until(lambda: browser.find_element(By.ID, "confirm").get_attribute("open") is not None, 5, what="the confirmation")
        if f" to {value} replicas?" in browser.find_element(By.ID, "confirm-text").text:
            browser.find_element(By.ID, "confirm-ok").click()
            return True
        browser.execute_script("document.getElementById('confirm').close()")  # not what was typed: ask again
        return False

    wait_until(attempt, 20, 0.2, what=f"scaling to {value} from the service page")


def test_the_ui_follows_and_steers_a_cluster(ui_cluster: Cluster, browser: webdriver.Chrome, tmp_path: Path) -> None:
    cluster = ui_cluster
    shots = DOCS_SCREENSHOTS if os.environ.get("CORRAL_SCREENSHOTS") == "docs" else tmp_path
    compose = tmp_path / "compose.yaml"
    compose.write_text(STACK)
    cluster.cli("deploy", "-c", str(compose), "--name", "shop")
    cluster.wait_running("shop_web", 2)
    admin = (cluster.data_dir / "admin-token").read_text().strip()

    url = _login_url(cluster, admin)
    assert "/ui/" in url and "code=" in url
    _open(browser, url)
    wait_until(lambda: {"node-1", "node-2"} <= set(_texts(browser, "tr[data-node] td:first-child")), 45, what="the nodes")  # first load
    wait_until(lambda: "2/2" in _texts(browser, "tr[data-service='shop_web'] td:nth-child(2)"), 20, what="the service")
    wait_until(lambda: _cells(browser, "running") == 2, 20, what="two running tasks in the placement map")
    assert "code=" not in browser.current_url  # the spent code is kept out of the history
    assert "admin" in browser.find_element(By.ID, "who").text
    browser.execute_script("window.notReloaded = true")

    # each node's CPU and memory used, from its agent, beside its reservations; refreshed from the top route alone
    run = browser.execute_script
    wait_until(lambda: pages.measured_nodes(run) == {"node-1", "node-2"}, 20, what="the nodes' use")
    use = run(pages.NODE_USE)
    assert all(u["reserved"].endswith(" reserved") and u["cpus"].endswith(" used") for u in use.values()), use
    fetched = run(pages.FETCHES)
    wait_until(lambda: run(pages.FETCHES)["/v1/top/nodes"] >= fetched["/v1/top/nodes"] + 2, 15, what="the use refreshed twice")
    again = run(pages.FETCHES)
    assert {k: again[k] for k in ("/v1/nodes", "/v1/tasks", "/v1/services")} == {k: fetched[k] for k in ("/v1/nodes", "/v1/tasks", "/v1/services")}
    browser.save_screenshot(str(shots / "cluster.png"))

    # a code works once: the same link again lands on the login form
    again = browser.execute_script("return sessionStorage.getItem('corral-token')")
    assert again and again != admin  # the browser has a token of its own, not the CLI's

    # scale from the service page: a confirmation, then the tasks appear live
    _click(browser, By.CSS_SELECTOR, "tr[data-service='shop_web'] a")
    wait_until(lambda: browser.find_elements(By.ID, "scale-replicas"), 10, what="the service page")
    _scale(browser, "3")
    wait_until(lambda: _texts(browser, "tbody tr[data-task] .badge").count("running") == 3, 45, what="3 running tasks on the service page")
    browser.save_screenshot(str(shots / "service.png"))

    # kill a container: its task turns failed and a replacement runs
    victim = next(c for c in cluster.containers(service="shop_web") if c.status == "running")
    docker.from_env().containers.get(victim.id).kill()
    wait_until(lambda: "failed" in _texts(browser, "tbody tr[data-task] .badge"), 30, what="the killed task shown failed")
    wait_until(lambda: _texts(browser, "tbody tr[data-task] .badge").count("running") == 3, 45, what="a replacement running")

    _click(browser, By.CSS_SELECTOR, "header .brand")
    wait_until(lambda: _cells(browser, "running") == 3, 20, what="three running tasks in the placement map")
    assert browser.execute_script("return window.notReloaded") is True  # all of it live, without a reload

    _click(browser, By.CSS_SELECTOR, "tr[data-node='node-1'] a")
    wait_until(lambda: browser.find_elements(By.ID, "availability-drain"), 10, what="the node page")
    browser.save_screenshot(str(shots / "node.png"))

    # an action the API refuses shows the API's error, and changes nothing
    _click(browser, By.CSS_SELECTOR, "#view a[href^='#/service/']")
    wait_until(lambda: browser.find_elements(By.ID, "scale-replicas"), 10, what="the service page again")
    _scale(browser, "-1")
    wait_until(lambda: "replicas" in browser.find_element(By.CSS_SELECTOR, "#toast.error").text, 10, what="the API's refusal")
    assert cluster.api("GET", "/v1/services/shop_web")["replicas"] == 3

    # a viewer sees no action at all
    viewer = cluster.cli("token", "create", "--role", "viewer", "--name", "ui-viewer", env={"CORRAL_TOKEN": admin}).stdout.strip().split()[-1]
    browser.execute_script("sessionStorage.clear()")
    _open(browser, _login_url(cluster, viewer))
    wait_until(lambda: "viewer" in browser.find_element(By.ID, "who").text, 20, what="the viewer signed in")
    wait_until(lambda: _cells(browser, "running") == 3, 20, what="the viewer's placement map")
    browser.get(browser.current_url.split("#")[0] + "#/service/shop_web")
    wait_until(lambda: _texts(browser, "tbody tr[data-task] .badge").count("running") == 3, 20, what="the viewer's service page")
    assert browser.find_elements(By.CSS_SELECTOR, ".actions button") == []
    browser.get(browser.current_url.split("#")[0] + "#/node/node-1")
    wait_until(lambda: "Node node-1" in browser.find_element(By.CSS_SELECTOR, "#view h1").text, 10, what="the viewer's node page")
    assert browser.find_elements(By.CSS_SELECTOR, ".actions button") == []

    # a phone's width: no page scrolls sideways (wide tables scroll in their own box), the header's links stay on screen
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    base = browser.current_url.split("#")[0]
    for route, ready in (("#/", pages.NODE_NAMES), ("#/service/shop_web", "return document.querySelectorAll('tr[data-task]').length"),
                         ("#/node/node-1", "return document.querySelectorAll('tr[data-task]').length")):
        browser.get(base + route)
        wait_until(lambda: run(ready), 20, what=f"{route} at a phone's width")
        widths = run(pages.WIDTHS)
        assert widths["innerWidth"] == 390 and widths["page"] <= 0 and widths["brand"], (route, widths)
        if route == "#/":
            assert widths["boxes"] > 0  # the nodes table is wider than a phone: its box scrolls, not the page
            wait_until(lambda: pages.measured_nodes(run), 20, what="the nodes' use at a phone's width")
        browser.save_screenshot(str((shots if route == "#/" else tmp_path) / f"phone-{route.strip('#/').replace('/', '-') or 'cluster'}.png"))
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    # a service's page follows its replicas' logs, each line prefixed with the task and its node, and their CPU use
    talk = tmp_path / "talk.yaml"
    talk.write_text(TALK)
    cluster.cli("deploy", "-c", str(talk), "--name", "chat")
    cluster.wait_running("chat_talk", 1)
    browser.get(browser.current_url.split("#")[0] + "#/service/chat_talk")
    wait_until(lambda: "chat_talk.1@node-" in browser.find_element(By.ID, "logs").text, 20, what="the log panel's first lines")
    first = browser.find_element(By.ID, "logs").text.count("tick-")
    wait_until(lambda: browser.find_element(By.ID, "logs").text.count("tick-") > first, 10, what="a new line, followed live")
    wait_until(lambda: any(t.endswith("%") for t in _texts(browser, "td.usage")), 30, what="the task's CPU use")

    # /docs works without the internet: Swagger UI's script comes from the manager
    browser.get(cluster.url + "/docs")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".opblock"), 20, what="Swagger UI to render the API")
