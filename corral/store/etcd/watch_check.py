"""Whether an etcd watch that has gone quiet is still alive: the rule, without I/O or clocks.

A watch stream that TCP still holds open can be dead: a manager cut off from a healthy etcd (a partition, a
middlebox that dropped the connection) hears nothing, and require-leader cancels watches only on a member that
has lost its leader. So after each quiet period (`EtcdSettings.watch_check` seconds without a message) the store
asks etcd, on a request of its own with that deadline, for its revision (a count of one key: O(1)); only when
that is past what the watch delivered, and past the revision a scan last found nothing undelivered at (writes
outside the prefix, the leader key, also move it), for the newest revision under the watched prefix (a sorted
scan of the prefix's keys: rare, since a quiet store settles it once):

- no answer: the link is cut: stalled;
- nothing newer than what the watch delivered: a quiet store, the watch is fine;
- something newer: maybe in flight; if a whole further quiet period passes and it is still undelivered, the
  watch is stalled (a live watch delivers a revision within milliseconds).

Deletes do not show in "newest under the prefix" (a deleted key has no revision to read), so a watch whose
only missed events are deletes is caught by the next put or by a cut link, not by this rule.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class QuietWatch:
    behind: bool = False  # the last check saw a revision the watch had not delivered
    settled: int = 0  # etcd's revision when a scan last found nothing undelivered under the prefix

    def needs_scan(self, revision: int, delivered: int) -> bool:
        """Whether etcd's `revision` may hold something under the prefix the watch has not delivered."""
        return revision > max(delivered, self.settled)

    def scanned(self, revision: int, newest: int, delivered: int) -> None:
        """A scan at etcd's `revision` found `newest` under the prefix: nothing undelivered settles `revision`."""
        if newest <= delivered:
            self.settled = max(self.settled, revision)

    def heard(self) -> None:
        """The watch delivered a message: whatever the last check saw may have been it."""
        self.behind = False

    def verdict(self, delivered: int, newest: int | None) -> str | None:
        """After a quiet period: why the watch is stalled, or None (alive, or given one more period).

        `delivered`: the last revision the watch delivered; `newest`: the newest revision under the prefix as
        etcd answered the check, None when it did not answer within the deadline."""
        if newest is None:
            return "etcd did not answer a check within its deadline: the link to it is cut"
        if newest <= delivered:
            self.behind = False
            return None
        if self.behind:
            return f"etcd holds revision {newest}, the watch has delivered only up to {delivered} over a whole quiet period"
        self.behind = True
        return None
