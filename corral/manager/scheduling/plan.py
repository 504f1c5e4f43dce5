"""What one scheduling pass decided: the scheduler's output, plain values."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Assignment:
    """Task `task_id` goes to node `node`."""

    task_id: str
    node: str


@dataclass(frozen=True, slots=True)
class Unplaced:
    """Task `task_id` fits no node now; `reason` says why, for the task's `error`."""

    task_id: str
    reason: str


@dataclass(frozen=True)
class Plan:
    assignments: list[Assignment]
    unplaced: list[Unplaced]
