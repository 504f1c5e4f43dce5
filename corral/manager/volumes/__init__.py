"""Named volumes as the control plane sees them.

`records` keeps the store's record of which node holds which volume (written
when a task that needs one is placed, removed only when asked) and answers
`corral volume ls|inspect|rm`. Where a slot's task may run because of its
volumes is the scheduler's (`scheduling/volumes.py`); which host paths a
deploy may bind-mount (`--allow-bind`) is checked where the file is read
(`compose/classify.py`, given the manager's list).
"""
