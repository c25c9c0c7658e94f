"""Fixtures for the server's tests."""

import pytest


@pytest.fixture
def task_identity(monkeypatch):
    """Flower stamps outgoing messages with the running task's identity; fake one."""
    from flwr.supercore.task_identity import TaskIdentity

    for name, value in (("_run_id", 1), ("_task_id", 1), ("_node_id", 0)):
        monkeypatch.setattr(TaskIdentity, name, value)
