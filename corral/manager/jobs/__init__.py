"""Jobs: services whose tasks run to completion, once (`corral job run` again) or on a schedule.

- `cron.py`: when a cron job's next run starts (pure: spec, last runs, now).
- `runs.py`: one run's tasks: parallelism, completions, back-off limit, deadline (pure, like replication).
"""
