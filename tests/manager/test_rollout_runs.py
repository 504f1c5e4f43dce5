"""`rollout.runs`: a task runs a shape when its spec equals it, whatever objects hold them.

The answer for a pair of spec objects is remembered (specs are frozen); these tests check that
the memory never gives one pair's answer to another pair.
"""

from corral.manager import rollout

from factories import make_service, make_task


def test_equal_specs_in_different_objects_run_the_shape() -> None:
    service = make_service("web", image="web:1")
    task = make_task(service)
    shape = service.spec.task_shape()  # a new object, equal to the task's spec
    assert task.spec is not shape
    assert rollout.runs(task, shape)
    assert rollout.runs(task, shape)  # the remembered answer
    assert rollout.runs(task, task.spec)  # the same object


def test_a_remembered_answer_is_not_given_to_another_pair() -> None:
    old = make_service("web", image="web:1")
    new = make_service("web", image="web:2", version=2)
    old_task, new_task = make_task(old), make_task(new, slot=2)
    old_shape, new_shape = old.spec.task_shape(), new.spec.task_shape()
    for _ in range(3):  # alternate, as a pass over a service in mid-rollout does
        assert rollout.runs(old_task, old_shape)
        assert not rollout.runs(old_task, new_shape)
        assert rollout.runs(new_task, new_shape)
        assert not rollout.runs(new_task, old_shape)


def test_many_shapes_do_not_grow_the_memory_without_bound() -> None:
    service = make_service("web", image="web:1")
    task = make_task(service)
    for _ in range(3 * rollout._COMPARED_MAX):
        assert rollout.runs(task, service.spec.task_shape())
    assert len(rollout._COMPARED) <= rollout._COMPARED_MAX
