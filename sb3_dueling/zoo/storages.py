"""
Optuna's ``--storage``, read so that its password stays a secret: the URL may come from an environment
variable (``--storage env:NAME``: a command line shows in ``ps``), and every message and every file of the
run (the Zoo's ``args.yml``, ``command.txt``, ``report_*.pkl``, the study's attributes) shows the URL with
its password masked, or ``env:NAME`` as given.
"""

import os
from dataclasses import dataclass
from urllib.parse import quote, unquote

from sb3_dueling.user_input import UsageError

#: ``--storage env:NAME``: the URL is the value of the environment variable NAME
FROM_ENVIRONMENT = "env:"
STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")
#: What stands for a password in what is shown
MASK = "***"


@dataclass(frozen=True)
class Storage:
    """
    An Optuna storage as opened and as shown.

    :param url: What SQLAlchemy opens (``postgresql://...``, the password percent-encoded), or a journal file
    :param shown: What messages and files show: ``env:NAME`` as given, else the URL with its password masked
    :param secrets: The forms of the password that a text may contain (as given, encoded, decoded)
    """

    url: str
    shown: str
    secrets: tuple[str, ...] = ()

    def hide(self, text: str) -> str:
        """``text`` with the password, in any of its forms, masked."""
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


def split_url(url: str) -> tuple[str, str, str | None, str]:
    """
    A database URL's scheme, user, password (``None`` when none) and the rest (host, database, query).

    The user information ends at the last ``@`` (SQLAlchemy's parser ends it at the first one, and reads the
    rest of a password with an ``@`` as the host, which the driver's error then shows).
    """
    scheme, _, rest = url.partition("://")
    if scheme.startswith("sqlite") or "@" not in rest:
        return scheme, "", None, rest
    user_information, _, rest = rest.rpartition("@")
    user, colon, password = user_information.partition(":")
    return scheme, user, password if colon else None, rest


def join_url(scheme: str, user: str, password: str | None, rest: str) -> str:
    """The URL of parts that :func:`split_url` gives (user and password as they are to appear)."""
    user_information = user if password is None else f"{user}:{password}"
    return f"{scheme}://{user_information}@{rest}" if user_information else f"{scheme}://{rest}"


def read_storage(given: str) -> Storage:
    """
    The storage of ``--storage given``: ``env:NAME`` (the environment variable's value) or a URL; ``postgres://``
    becomes ``postgresql://`` (SQLAlchemy knows only the latter), and the user and password are percent-encoded.

    :param given: ``env:NAME``, a SQLAlchemy URL (``sqlite:///PATH``, ``postgresql://USER:PASSWORD@HOST/DB``,
        ``mysql://...``) or a journal file ``PATH.log``
    """
    from_environment = given.startswith(FROM_ENVIRONMENT)
    url = given
    if from_environment:
        name = given.removeprefix(FROM_ENVIRONMENT)
        if not os.environ.get(name):
            raise UsageError(f"--storage {given}: the environment variable {name!r} is not set")
        url = os.environ[name]
    if url.endswith(".log"):
        return Storage(url, url)  # Optuna's journal file, which the Zoo opens itself when it sees its name
    scheme, user, password, rest = split_url(url)
    if scheme.split("+")[0] == "postgres":
        scheme = "postgresql" + scheme.removeprefix("postgres")
    user = quote(unquote(user), safe="")
    encoded = None if password is None else quote(unquote(password), safe="")
    masked = join_url(scheme, user, None if password is None else MASK, rest)
    forms = {password, unquote(password), encoded} if password else set()
    storage = Storage(
        join_url(scheme, user, encoded, rest),
        given if from_environment else masked,
        tuple(sorted((form for form in forms if form), key=len, reverse=True)),
    )
    if "://" not in url or scheme.split("+")[0] not in STORAGE_SCHEMES:
        raise UsageError(
            f"unsupported --storage {storage.shown if '://' in url else given!r}: use sqlite:///PATH, "
            "postgresql://USER:PASSWORD@HOST/DB (or postgres://), mysql://..., a journal file PATH.log, "
            "or env:NAME to read the URL from the environment variable NAME"
        )
    return storage


def check_storage(storage: Storage) -> None:
    """
    Check that the database server of a storage answers (a journal file or SQLite: nothing to check).

    :param storage: What :func:`read_storage` read
    """
    if storage.url.endswith(".log") or storage.url.startswith("sqlite"):
        return
    import sqlalchemy

    try:
        with sqlalchemy.create_engine(storage.url, connect_args={"connect_timeout": 10}).connect():
            pass
    except Exception as error:  # the driver's own errors differ (missing driver, refused, auth)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if isinstance(error, ModuleNotFoundError):
            reason += " (the database driver is missing: pip install 'sb3_dueling[zoo]' brings PostgreSQL's)"
        # Nothing chained: the driver's error may show the URL
        raise UsageError(f"cannot reach the --storage database {storage.shown}: {storage.hide(reason)}") from None


def reopened_url(shown: str) -> str:
    """
    The URL that reopens a storage shown as ``shown`` (a study unpickled from the Zoo's ``report_*.pkl``):
    ``env:NAME``'s value, else the URL without its masked password, which the driver then takes from its own
    settings (PostgreSQL's ``PGPASSWORD`` or ``~/.pgpass``).
    """
    if shown.startswith(FROM_ENVIRONMENT):
        return read_storage(shown).url
    scheme, user, password, rest = split_url(shown)
    return join_url(scheme, user, None if password == MASK else password, rest)
