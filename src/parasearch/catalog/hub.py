"""A model's config.json from the Hugging Face Hub: the local cache first, the network only when
allowed and needed. `huggingface_hub` is imported here only, when a repo id outside the catalog is
asked for, so catalog names and paths never load it."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ParasearchError

_TRUE = ("1", "ON", "YES", "TRUE")


class HubError(ParasearchError):
    pass


def _settings() -> tuple[str, bool]:
    """(cache folder, offline). The environment is read at call time, then the hub's own defaults
    (HF_HOME, XDG_CACHE_HOME), which it reads once at import."""
    from huggingface_hub import constants

    cache = os.environ.get("HF_HUB_CACHE") or str(constants.HF_HUB_CACHE)
    offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE or bool(constants.HF_HUB_OFFLINE)
    return cache, offline


def _unresolvable() -> str | None:
    """Why the Hub cannot be reached, when that is plain at once: its host name does not resolve
    (an air-gapped machine) and no proxy is set. Otherwise None, and the hub client tries, with
    its own retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return f"{host} does not resolve"
    return None


@contextmanager
def _quiet():
    """The hub client logs each retry on stderr; the user gets one line from us instead."""
    import logging

    log = logging.getLogger("huggingface_hub")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def hub_config(repo_id: str) -> tuple[Any, str]:
    """(parsed config.json, its path) for `repo_id`; a HubError in one line when it cannot be had."""
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise HubError(f"model '{repo_id}' is not in the catalog, and huggingface_hub is not installed",
                       hint="pip install huggingface_hub, or --model path/to/config.json") from None
    from huggingface_hub import errors, hf_hub_download

    from .models import read_config

    cache, offline = _settings()
    local = f"--model path/to/config.json, or fetch it with `hf download {repo_id} config.json`"
    try:
        path = hf_hub_download(repo_id, "config.json", cache_dir=cache, local_files_only=True)
    except (errors.LocalEntryNotFoundError, FileNotFoundError):
        path = None
    except (errors.HFValidationError, ValueError) as exc:
        raise HubError(f"model '{repo_id}': not a Hugging Face repo id ({str(exc).splitlines()[0]})") from None
    if path is None:
        if offline:
            raise HubError(f"model '{repo_id}': its config.json is not in the Hugging Face cache ({cache}) "
                           "and HF_HUB_OFFLINE is set", hint=f"go online once, or give {local}")
        def unreachable(why: str) -> HubError:
            return HubError(f"model '{repo_id}': not in the Hugging Face cache ({cache}) and the Hub cannot be "
                            f"reached ({why})", hint=f"give {local}")

        no_dns = _unresolvable()
        if no_dns:
            raise unreachable(no_dns)
        try:
            with _quiet():
                path = hf_hub_download(repo_id, "config.json", cache_dir=cache)
        except errors.GatedRepoError:
            raise HubError(f"model '{repo_id}' is gated on the Hugging Face Hub",
                           hint=f"accept its license and run `hf auth login`, or give {local}") from None
        except errors.RepositoryNotFoundError:
            raise HubError(f"model '{repo_id}': no such repository on the Hugging Face Hub (or it is private)",
                           hint="check the id, see `parasearch catalog models`, or give --model "
                                "path/to/config.json") from None
        except errors.LocalEntryNotFoundError as exc:  # before its base class EntryNotFoundError
            raise unreachable(_first_line(exc)) from None
        except (errors.EntryNotFoundError, errors.RevisionNotFoundError):
            raise HubError(f"model '{repo_id}' has no config.json on the Hugging Face Hub",
                           hint="give --model path/to/config.json") from None
        except (errors.HfHubHTTPError, OSError) as exc:
            raise unreachable(_first_line(exc)) from None
    return read_config(Path(path)), str(path)
