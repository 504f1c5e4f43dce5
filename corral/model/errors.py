"""The kinds of failure, one exception type each.

The API turns each into one HTTP status (corral/manager/api/errors.py) and
the CLI into one message (corral/cli/output.py); nothing else maps them.
"""


class CorralError(Exception):
    """Base of every error corral raises on purpose."""

    status = 500


class InvalidSpec(CorralError):
    """User input (compose file, API body, constraint) is wrong. Nothing was changed."""

    status = 422

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


class InvalidSpecs(InvalidSpec):
    """Several problems of one input (a compose file), reported together: one line each, path first."""

    SHOWN = 100  # lines; a file of ten thousand misspelled keys gets a readable answer

    def __init__(self, problems: "list[InvalidSpec]") -> None:
        self.problems = problems
        super().__init__(problems[0].path, problems[0].reason)
        lines = [str(problem) for problem in problems[: self.SHOWN]]
        if len(problems) > self.SHOWN:
            lines.append(f"... and {len(problems) - self.SHOWN} more problems")
        self.args = ("\n".join(lines),)

    def __str__(self) -> str:
        return str(self.args[0])


class NotFound(CorralError):
    status = 404


class Conflict(CorralError):
    """A compare-and-swap lost: somebody else changed the object first."""

    status = 409


class Unauthorized(CorralError):
    status = 401


class Compacted(CorralError):
    """History from `revision` on is gone (compacted): a watch must start at `oldest` or later, or list again.

    As etcd answers "required revision has been compacted". The message says how to resume.
    """

    status = 410

    def __init__(self, revision: int, oldest: int) -> None:
        self.revision = revision
        self.oldest = oldest
        super().__init__(
            f"revision {revision} has been compacted; the oldest available is {oldest}:"
            f" resume with --since {oldest} or without --since"
        )


class NotCaughtUp(CorralError, TimeoutError):
    """A write is durable, but this manager's cache has not seen it in time: the change is
    stored, only reading it back must wait. (A TimeoutError too, for callers that just wait.)"""

    status = 503

    def __init__(self, revision: int) -> None:
        self.revision = revision
        super().__init__(
            f"the change is stored (revision {revision}) but this manager has not caught up yet; retry the read"
        )


class StorageFull(CorralError):
    """The store cannot write: the manager's disk is full. Nothing was changed; writes work again once space is freed."""

    status = 507


class TooLarge(CorralError):
    """A write is larger than the store takes at once (etcd's request size or operation count). Nothing was changed."""

    status = 413


class StoreUnavailable(CorralError):
    """The store does not answer (no etcd member reachable, or no quorum). Nothing is known to have changed:
    a write may be retried; reads from a manager's cache go on."""

    status = 503


class NotLeader(CorralError):
    """This manager's term as leader is over (its lease lapsed, another leads): the write was refused, nothing changed."""

    status = 503


class BadParameter(InvalidSpec):
    """A query parameter is wrong (a list's `limit` or `continue`); `path` names it. Nothing was changed."""

    status = 400


class ListingExpired(CorralError):
    """A paged listing's snapshot is no longer held: list again from the first page (as Kubernetes' 410 on a continue token)."""

    status = 410
