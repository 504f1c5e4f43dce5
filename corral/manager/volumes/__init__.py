"""Named volumes and bind mounts as the control plane sees them.

`binds` decides which host paths a deploy may bind-mount (`--allow-bind`);
`records` keeps the store's record of which node holds which volume (written
when a task that needs one is placed, removed only when asked) and answers
`corral volume ls|inspect|rm`. Where a slot's task may run because of its
volumes is the scheduler's (`scheduling/volumes.py`).
"""
