"""
Optuna studies in a database: safe to start from many workers at once, and with a heartbeat, so
that a killed worker cannot leave its trial RUNNING forever.
"""

import random
import time
from typing import Any

import optuna
from sqlalchemy.exc import IntegrityError, ProgrammingError

from sb3_dueling.zoo.storages import Storage, read_storage, reopened_url

#: Seconds between a worker's heartbeats; a trial without one for GRACE_FACTOR times as long is stale
HEARTBEAT_INTERVAL = 60
GRACE_FACTOR = 3
#: Tries at opening a database storage whose tables another worker may be creating at that moment
OPEN_ATTEMPTS = 5


class StorageError(RuntimeError):
    """A database error, with the password masked in its message."""


class MaskedRDBStorage(optuna.storages.RDBStorage):
    """
    Optuna's ``RDBStorage`` whose pickle holds the URL as shown, without the password (the Zoo pickles its
    study into ``report_*.pkl``); unpickled, it reopens the database with :func:`reopened_url`.

    :param storage: The storage to open
    :param kwargs: ``RDBStorage``'s keyword arguments
    """

    def __init__(self, storage: Storage, **kwargs: Any) -> None:
        self.shown = storage.shown
        super().__init__(storage.url, **kwargs)

    def __getstate__(self) -> dict[Any, Any]:
        return {**super().__getstate__(), "url": self.shown}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__({**state, "url": reopened_url(state["url"])})


def open_database_storage(
    storage: Storage | str, heartbeat_interval: int | None = HEARTBEAT_INTERVAL, attempts: int = OPEN_ATTEMPTS
) -> optuna.storages.RDBStorage:
    """
    Optuna's ``RDBStorage`` for ``storage``, with a heartbeat, opened so that workers may start together,
    and keeping its password out of its pickle and of the errors it raises.

    The first worker on an empty database creates Optuna's tables. Two workers doing it at the same
    moment race in the server (PostgreSQL: ``duplicate key ... pg_type_typname_nsp_index``, or
    ``relation ... already exists``): the loser's tables exist by then, so it tries again after a
    short random pause instead of failing.

    :param storage: What :func:`~sb3_dueling.zoo.storages.read_storage` read, or a SQLAlchemy database URL
        (``sqlite:///...``, ``postgresql://...``, ``mysql://...``)
    :param heartbeat_interval: seconds between heartbeats (``None``: no heartbeat)
    :param attempts: how many times to try before the database's error is raised
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    if isinstance(storage, str):
        storage = read_storage(storage)
    grace_period = None if heartbeat_interval is None else GRACE_FACTOR * heartbeat_interval

    def open_storage() -> optuna.storages.RDBStorage:
        return MaskedRDBStorage(storage, heartbeat_interval=heartbeat_interval, grace_period=grace_period)

    pauses = random.Random()  # its own: drawing from the global generator would change the user's random numbers
    for attempt in range(1, attempts):
        try:
            return open_storage()
        except (IntegrityError, ProgrammingError):
            time.sleep(pauses.uniform(0.1, 0.5) * attempt)
    try:
        return open_storage()  # the last try: its error, if any, is the database's own
    except Exception as error:
        if storage.hide(str(error)) == str(error):
            raise
        raise StorageError(f"{type(error).__name__}: {storage.hide(str(error))}") from None  # nothing with the password


def with_heartbeat(given: Any, interval: int | None = HEARTBEAT_INTERVAL, storage: Storage | None = None) -> Any:
    """
    The storage to give ``optuna.create_study`` or ``optuna.load_study`` in place of the one the Zoo gives: a
    database URL becomes a storage with a heartbeat (Optuna's ``RDBStorage(heartbeat_interval=...)``), opened
    with :func:`open_database_storage` so that workers can start together. When any worker starts a
    trial, the trials whose worker stopped beating ``GRACE_FACTOR * interval`` seconds ago (killed,
    pre-empted, lost its machine) are marked FAIL instead of staying RUNNING.

    :param given: What the Zoo passes: a URL, a journal file ``PATH.log`` (no heartbeat there), a storage or None
    :param interval: seconds between heartbeats (``None``: no heartbeat)
    :param storage: The storage of the command's ``--storage``, which the Zoo knows only as shown
    """
    if storage is not None and given == storage.shown:
        given = storage
    url = given.url if isinstance(given, Storage) else given
    if isinstance(url, str) and not url.endswith(".log"):
        return open_database_storage(given, interval)
    return url
