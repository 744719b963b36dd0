"""Where an Optuna study lives: a journal file or a database URL, opened so that workers survive
each other.

- Journal files are locked with `flock`, which the kernel releases when the holder dies: a worker
  killed with SIGKILL leaves no stale lock (Optuna's default symlink lock then stalls every other
  writer for its 30 s grace period). A file that is not a journal is refused before Optuna reads it.
- SQLite waits for the database lock (busy timeout) instead of failing at once, in WAL mode, and
  the schema is created with retries, since two workers starting together race to create it.
- `postgresql://` is mapped to the installed driver: SQLAlchemy 2.1 reads that scheme as psycopg 3,
  while the `postgres` extra installs psycopg2.
- URLs are printed with the password masked, and database errors have it removed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from typing import Any

from .. import files
from ..errors import ParasearchError

ENV = "PARASEARCH_STORAGE"
SQLITE_TIMEOUT_S = 60.0
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):([^/@]*)@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.I)


def mask_url(url: str) -> str:
    """`scheme://user:***@host/db`: the URL fit to print."""
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO.sub(r"\1:***@", url))


def _password(url: str) -> str | None:
    m = _USERINFO.match(url)
    if m and m.group(2):
        return m.group(2)
    q = re.search(r"[?&]password=([^&]*)", url, re.I)
    return q.group(1) if q and q.group(1) else None


def _redact(text: str, url: str) -> str:
    secret = _password(url)
    first = text.splitlines()[0] if text else ""
    return first.replace(secret, "***") if secret else first


def _postgres_driver(url: str) -> str:
    """`postgresql://` (and Heroku's `postgres://`) with the driver that is installed."""
    scheme, rest = url.split("://", 1)
    base, _, driver = scheme.lower().partition("+")
    if base not in ("postgresql", "postgres"):
        return url
    have = {d: importlib.util.find_spec(d) is not None for d in ("psycopg", "psycopg2")}
    if driver and driver in have and not have[driver]:
        other = "psycopg2" if driver == "psycopg" else "psycopg"
        hint = f"use postgresql+{other}://..." if have[other] else "pip install 'parasearch[postgres]'"
        raise ParasearchError(f"storage {mask_url(url)} needs the {driver} driver, which is not installed", hint=hint)
    if driver:
        return f"postgresql+{driver}://{rest}"
    if have["psycopg"]:
        return f"postgresql+psycopg://{rest}"
    if have["psycopg2"]:
        return f"postgresql+psycopg2://{rest}"
    raise ParasearchError(f"storage {mask_url(url)} needs a PostgreSQL driver",
                          hint="pip install 'parasearch[postgres]' (psycopg2)")


def _flock_lock_class():
    """A journal lock held with flock(2): released by the kernel when its holder exits or is
    killed, so it is never stale. None where fcntl does not exist (Windows)."""
    try:
        import fcntl
    except ImportError:
        return None
    from optuna.storages.journal import JournalFileOpenLock

    class FlockLock(JournalFileOpenLock):  # the public lock type; its lock-file protocol is replaced whole
        def __init__(self, journal: str) -> None:  # noqa: super().__init__ would arm the grace period
            self.path = journal + ".flock"
            self.fd: int | None = None

        def acquire(self) -> bool:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self.fd = fd
            return True

        def release(self) -> None:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
                self.fd = None

    return FlockLock


def _check_journal(path: str) -> None:
    """An existing file must already be an Optuna journal (JSON lines with an op_code): a typo that
    names a source file or a log must not be appended to, nor crash the reader."""
    kind = files.probe(path)
    if kind == "missing":
        folder = os.path.dirname(path) or "."
        if files.probe(folder) != "dir":
            raise ParasearchError(f"--storage {files.short(path)}: the folder {files.short(folder)} does not exist")
        return
    if kind != "file":
        raise ParasearchError(f"--storage {files.short(path)}: not a regular file", hint="give a journal file path")
    if os.path.getsize(path) == 0:
        return
    with open(path, "rb") as f:
        first = f.readline(1_000_000)
    try:
        record = json.loads(first)
    except ValueError:
        record = None
    if not isinstance(record, dict) or "op_code" not in record:
        raise ParasearchError(f"--storage {files.short(path)}: this file is not an Optuna journal",
                              hint="give a new file name, an existing study journal, or a database URL")


def _rdb(url: str):
    import optuna

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    last: Exception | None = None
    for attempt in range(8):  # two workers creating one schema: the loser retries and finds it made
        try:
            storage = optuna.storages.RDBStorage(url, **kwargs)
            break
        except ImportError:
            raise
        except Exception as exc:  # sqlalchemy errors: schema race, bad URL, server down, auth
            last = exc
            if "already exists" not in str(exc) and "UNIQUE constraint" not in str(exc) and "locked" not in str(exc):
                raise
            time.sleep(0.05 * 2 ** attempt)
    else:
        raise last  # type: ignore[misc]
    if url.startswith("sqlite"):
        _sqlite_wal(storage.engine)
    return storage


def _sqlite_wal(engine) -> None:
    """WAL mode (persistent in the file) lets readers run beside the writer; with it, synchronous=NORMAL
    (set on every connection) syncs at checkpoints instead of every commit, which keeps each commit
    safe from a killed process (not from a power cut) and makes a trial's dozen commits cheap."""
    from sqlalchemy import event

    def on_connect(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    except Exception:
        return  # a read-only or network file system: the busy timeout still serializes writers
    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened before the listener reconnect with it


def open_storage(url: str):
    """The Optuna storage for a `--storage` value: a journal file path or a database URL."""
    import optuna

    if "://" in url:
        shown = mask_url(url)
        if url.lower().startswith("sqlite:///"):
            path = url[len("sqlite:///"):].split("?", 1)[0]
            if path and files.probe(path) not in ("file", "missing"):
                raise ParasearchError(f"--storage {shown}: not a regular file")
        try:
            return _rdb(_postgres_driver(url))
        except ParasearchError:
            raise
        except ImportError as exc:
            raise ParasearchError(f"storage {shown} needs a database driver: {_redact(str(exc), url)}",
                                  hint="pip install 'parasearch[postgres]' for PostgreSQL") from None
        except Exception as exc:
            raise ParasearchError(f"cannot open storage {shown}: {_redact(str(exc), url)}") from None
    _check_journal(url)
    from optuna.storages.journal import JournalFileBackend

    lock = _flock_lock_class()
    try:
        return optuna.storages.JournalStorage(JournalFileBackend(url, lock_obj=lock(url) if lock else None))
    except OSError as exc:
        raise ParasearchError(f"cannot open journal file {files.short(url)}: {exc.strerror}") from None
    except ValueError as exc:  # a journal whose lines do not parse
        raise ParasearchError(f"journal file {files.short(url)} is damaged: {exc}") from None
