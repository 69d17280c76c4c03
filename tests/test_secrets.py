"""The database password of an Optuna --storage stays a secret: masked in messages, out of files and pickles."""

import pickle

import pytest

from sb3_dueling.user_input import UsageError
from sb3_dueling.zoo.__main__ import main
from sb3_dueling.zoo.storages import read_storage, reopened_url
from sb3_dueling.zoo.studies import MaskedRDBStorage, StorageError, open_database_storage

#: A password with the characters that URLs and SQLAlchemy's parser treat specially
PASSWORD = "s3cr@t:p%w"
FORMS = ("s3cr@t:p%w", "s3cr%40t%3Ap%25w", "s3cr@t", "t:p%w")


def assert_hidden(text: str) -> None:
    for form in FORMS:
        assert form not in text, f"{form!r} in {text!r}"


@pytest.mark.parametrize(
    "given, url, shown",
    [
        # as given: the '@' and ':' of the password left raw (SQLAlchemy would take 't:p%w@127.0.0.1' for the host)
        (
            f"postgres://me:{PASSWORD}@127.0.0.1:5/db",
            "postgresql://me:s3cr%40t%3Ap%25w@127.0.0.1:5/db",
            "postgresql://me:***@127.0.0.1:5/db",
        ),
        # percent-encoded, with a driver and a query
        (
            "postgresql+psycopg://me:s3cr%40t%3Ap%25w@h/db?options=-csearch_path%3Dx",
            "postgresql+psycopg://me:s3cr%40t%3Ap%25w@h/db?options=-csearch_path%3Dx",
            "postgresql+psycopg://me:***@h/db?options=-csearch_path%3Dx",
        ),
        ("mysql://me:s3cr%40t%3Ap%25w@h/db", "mysql://me:s3cr%40t%3Ap%25w@h/db", "mysql://me:***@h/db"),
        ("postgresql://me@h/db", "postgresql://me@h/db", "postgresql://me@h/db"),  # the password from PGPASSWORD
        ("sqlite:////home/me@work/optuna.db", "sqlite:////home/me@work/optuna.db", "sqlite:////home/me@work/optuna.db"),
        ("studies/optuna.log", "studies/optuna.log", "studies/optuna.log"),
    ],
)
def test_a_storage_is_opened_normalised_and_shown_masked(given, url, shown):
    storage = read_storage(given)
    assert (storage.url, storage.shown) == (url, shown)
    assert_hidden(storage.shown)
    if "s3cr" in given:
        assert_hidden(storage.hide(f"error at {given} and {url}: password {PASSWORD!r}"))


def test_a_storage_from_the_environment_is_shown_by_the_variables_name(monkeypatch):
    monkeypatch.setenv("MY_STUDY_DB", f"postgres://me:{PASSWORD}@h/db")
    storage = read_storage("env:MY_STUDY_DB")
    assert (storage.url, storage.shown) == ("postgresql://me:s3cr%40t%3Ap%25w@h/db", "env:MY_STUDY_DB")
    assert reopened_url("env:MY_STUDY_DB") == storage.url
    assert reopened_url("postgresql://me:***@h/db") == "postgresql://me@h/db"  # the driver's own settings give it
    monkeypatch.delenv("MY_STUDY_DB")
    with pytest.raises(UsageError, match=r"^--storage env:MY_STUDY_DB: the environment variable 'MY_STUDY_DB' is not set$"):
        read_storage("env:MY_STUDY_DB")


@pytest.mark.parametrize("given", [f"redis://me:{PASSWORD}@h/0", "optuna.db"])
def test_an_unsupported_storage_is_named_without_its_password(given):
    with pytest.raises(UsageError, match=r"^unsupported --storage '(redis://me:\*\*\*@h/0|optuna\.db)': use sqlite") as error:
        read_storage(given)
    assert_hidden(str(error.value))
    assert "postgres://" in str(error.value) and "env:NAME" in str(error.value)


@pytest.mark.parametrize("form", [PASSWORD, "s3cr%40t%3Ap%25w"])
def test_an_unreachable_database_is_named_without_its_password(tmp_path, capsys, form):
    code = main(["train", "-f", str(tmp_path), "-n", "100", "-optimize", "--storage", f"postgres://me:{form}@127.0.0.1:1/db"])
    output = capsys.readouterr()
    assert code == 2 and "Traceback" not in output.err
    assert output.err.startswith("error: cannot reach the --storage database postgresql://me:***@127.0.0.1:1/db: ")
    assert "port 1 failed" in output.err  # the right host and port: the password's '@' is not taken for the host
    assert_hidden(output.out + output.err)
    assert list(tmp_path.iterdir()) == []


def test_a_database_error_that_shows_the_password_is_raised_masked(monkeypatch):
    def failing(self, url, **kwargs):
        raise RuntimeError(f"cannot open {url}")

    monkeypatch.setattr("optuna.storages.RDBStorage.__init__", failing)
    with pytest.raises(StorageError, match=r"^RuntimeError: cannot open postgresql://me:\*\*\*@h/db$") as error:
        open_database_storage(f"postgres://me:{PASSWORD}@h/db", attempts=1)
    assert error.value.__cause__ is None and error.value.__suppress_context__  # nothing chained shows it


def test_a_pickled_storage_holds_no_password(tmp_path, monkeypatch):
    storage = MaskedRDBStorage(read_storage(f"sqlite:///{tmp_path / 'study.db'}"))
    storage.shown = "postgresql://me:***@h/db"  # as if opened on that server (the pickle is what matters)
    state = pickle.dumps(storage)
    assert_hidden(state.decode("latin-1")) and b"postgresql://me:***@h/db" in state


def test_an_unexpected_error_that_shows_the_password_is_printed_masked(tmp_path, monkeypatch, capsys):
    def failing_zoo(command, args):
        raise RuntimeError(f"the driver failed on {PASSWORD}")

    monkeypatch.setattr("sb3_dueling.zoo.__main__.check_storage", lambda storage: None)
    monkeypatch.setattr("sb3_dueling.zoo.__main__.run_zoo", failing_zoo)
    storage = f"postgres://me:{PASSWORD}@h/db"
    assert main(["train", "-f", str(tmp_path), "-n", "100", "-optimize", "--storage", storage]) == 1
    output = capsys.readouterr()
    assert "Traceback" in output.err and "RuntimeError: the driver failed on ***" in output.err
    assert_hidden(output.out + output.err)
