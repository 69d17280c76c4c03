"""Optuna studies in a database with a heartbeat, so that a killed worker cannot leave its trial RUNNING forever."""

from typing import Any

import optuna

#: Seconds between a worker's heartbeats; a trial without one for GRACE_FACTOR times as long is stale
HEARTBEAT_INTERVAL = 60
GRACE_FACTOR = 3


def enable_heartbeat(interval: int = HEARTBEAT_INTERVAL) -> None:
    """
    Give the database studies the Zoo creates a heartbeat (Optuna's ``RDBStorage(heartbeat_interval=...)``):
    when any worker starts a trial, the trials whose worker stopped beating ``GRACE_FACTOR * interval``
    seconds ago (killed, pre-empted, lost its machine) are marked FAIL instead of staying RUNNING.

    The Zoo hands ``optuna.create_study`` a storage URL; this wraps the function for this process.

    :param interval: seconds between heartbeats
    """
    create_study = optuna.create_study

    def create_study_with_heartbeat(*args: Any, storage: Any = None, **kwargs: Any) -> optuna.Study:
        if isinstance(storage, str) and not storage.endswith(".log"):  # a database URL (journal files have no heartbeat)
            storage = optuna.storages.RDBStorage(storage, heartbeat_interval=interval, grace_period=GRACE_FACTOR * interval)
        return create_study(*args, storage=storage, **kwargs)

    optuna.create_study = create_study_with_heartbeat  # type: ignore[assignment]
