"""
Optuna studies in a database: safe to start from many workers at once, and with a heartbeat, so
that a killed worker cannot leave its trial RUNNING forever.
"""

import random
import time
from typing import Any

import optuna
from sqlalchemy.exc import IntegrityError, ProgrammingError

#: Seconds between a worker's heartbeats; a trial without one for GRACE_FACTOR times as long is stale
HEARTBEAT_INTERVAL = 60
GRACE_FACTOR = 3
#: Tries at opening a database storage whose tables another worker may be creating at that moment
OPEN_ATTEMPTS = 5


def open_database_storage(
    url: str, heartbeat_interval: int = HEARTBEAT_INTERVAL, attempts: int = OPEN_ATTEMPTS
) -> optuna.storages.RDBStorage:
    """
    Optuna's ``RDBStorage`` for ``url``, with a heartbeat, opened so that workers may start together.

    The first worker on an empty database creates Optuna's tables. Two workers doing it at the same
    moment race in the server (PostgreSQL: ``duplicate key ... pg_type_typname_nsp_index``, or
    ``relation ... already exists``): the loser's tables exist by then, so it tries again after a
    short random pause instead of failing.

    :param url: a SQLAlchemy database URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``)
    :param heartbeat_interval: seconds between heartbeats
    :param attempts: how many times to try before the database's error is raised
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")

    def open_storage() -> optuna.storages.RDBStorage:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=heartbeat_interval, grace_period=GRACE_FACTOR * heartbeat_interval
        )

    pauses = random.Random()  # its own: drawing from the global generator would change the user's random numbers
    for attempt in range(1, attempts):
        try:
            return open_storage()
        except (IntegrityError, ProgrammingError):
            time.sleep(pauses.uniform(0.1, 0.5) * attempt)
    return open_storage()  # the last try: its error, if any, is the database's own


def with_heartbeat(storage: Any, interval: int = HEARTBEAT_INTERVAL) -> Any:
    """
    The storage to give ``optuna.create_study`` in place of the one the Zoo gives: a database URL
    becomes a storage with a heartbeat (Optuna's ``RDBStorage(heartbeat_interval=...)``), opened with
    :func:`open_database_storage` so that workers can start together. When any worker starts a
    trial, the trials whose worker stopped beating ``GRACE_FACTOR * interval`` seconds ago (killed,
    pre-empted, lost its machine) are marked FAIL instead of staying RUNNING.

    :param storage: What the Zoo passes: a URL, a journal file ``PATH.log`` (no heartbeat there), a storage or None
    :param interval: seconds between heartbeats
    """
    if isinstance(storage, str) and not storage.endswith(".log"):
        return open_database_storage(storage, interval)
    return storage
