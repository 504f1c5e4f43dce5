"""The web UI: static files the manager serves at /ui/ (no build step, no CDN, no library).

`static/` holds one page (index.html), its script (app.js) and its style
(app.css). The page reads the same API as the CLI, with a token kept in the
browser's sessionStorage (from a one-time login code, see
corral/manager/api/ui.py), and follows /v1/events to stay live.
"""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
