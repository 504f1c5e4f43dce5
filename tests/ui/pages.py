"""What the UI tests read from a page, as JavaScript function bodies (`return ...`), so that Chromium (Selenium's
`execute_script`) and Firefox (tests/ui/firefox.py, WebDriver BiDi) check the same things the same way."""

from collections.abc import Callable
from typing import Any

Run = Callable[[str], Any]  # runs a function body in the page, returns its JSON-able result

NODE_NAMES = "return [...document.querySelectorAll('tr[data-node] td:first-child')].map((el) => el.textContent)"
SERVICE_REPLICAS = "return [...document.querySelectorAll('tr[data-service] td:nth-child(2)')].map((el) => el.textContent)"
ACTION_BUTTONS = "return document.querySelectorAll('.actions button').length"
WHO = "return document.getElementById('who').textContent"
# each node row's use figures: {node: {cpus: text, memory: text, measured: bool}} (the bars of /v1/top/nodes)
NODE_USE = """return Object.fromEntries([...document.querySelectorAll('tr[data-node]')].map((row) => [row.dataset.node, {
  cpus: row.querySelector('[data-use=cpus] .figure').textContent,
  memory: row.querySelector('[data-use=memory] .figure').textContent,
  reserved: row.querySelector('[data-reserved=cpus] .figure').textContent,
  measured: !!row.querySelector('[data-use=memory] .bar[role=meter]')}]))"""
# how many times the page fetched each of these paths (the resource timings of its fetches)
FETCHES = """return Object.fromEntries(['/v1/top/nodes', '/v1/nodes', '/v1/tasks', '/v1/services'].map((path) => [path,
  performance.getEntriesByType('resource').filter((e) => new URL(e.name).pathname === path).length]))"""
# the page's width beyond the window's (0: no sideways scroll of the page), and the widest scroll box's excess
WIDTHS = """return {page: document.documentElement.scrollWidth - window.innerWidth, innerWidth: window.innerWidth,
  boxes: Math.max(0, ...[...document.querySelectorAll('.scroll')].map((el) => el.scrollWidth - el.clientWidth)),
  brand: document.querySelector('header .brand').getBoundingClientRect().right <= window.innerWidth}"""


def measured_nodes(run: Run) -> set[str]:
    """The nodes whose used CPU and memory the page shows."""
    return {name for name, use in (run(NODE_USE) or {}).items() if use["measured"] and use["memory"].endswith(" used")}
