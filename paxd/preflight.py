"""Everything paxd checks before the reactor runs, for ``serve``, ``twistd`` and ``check-config``.

:func:`load` finds the configuration (a file, or the vendor image's built-in
defaults when no file is given and none is at :data:`DEFAULT_CONFIG`);
:func:`prepare` checks what the daemon will need — listener descriptions, the
TLS files or ACME cache, the storage root, the htpasswd file — and gathers
every warning the daemon would log at start. Each refusal is a
:class:`~paxd.config.ConfigError`: one line naming the file, the key and the fix.

``prepare(config, create=True)`` is the daemon's: it creates the storage
root, the ACME cache directory and a missing htpasswd file (whose generated
admin password it returns, to be logged once). ``create=False`` is
``paxd check-config``'s: it changes nothing on disk and says instead what
``serve`` would create.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import attrs
from twisted.internet.endpoints import serverFromString

from paxd.auth.htpasswd import HtpasswdError, check_file, ensure_htpasswd
from paxd.config import Config, ConfigError, load_config, load_default_config
from paxd.config.files import creation_problem
from paxd.listeners import endpoint_descriptions
from paxd.tls.certificates import TLSSetupError

__all__ = [
    "DEFAULT_CONFIG",
    "ROOT_KEY",
    "Prepared",
    "check_listeners",
    "is_loopback",
    "load",
    "prepare",
    "written_paths",
]

#: where paxd looks for its configuration when none is named
DEFAULT_CONFIG = "/etc/paxd/config.yml"
ROOT_KEY = "storage.filesystem.rootdirectory"
HTPASSWD_KEY = "auth.htpasswd.path"
#: what a start-up probe file in the storage root is called (hidden, like the driver's own)
_PROBE_PREFIX = ".paxd-tmp-start-"


@attrs.frozen
class Prepared:
    """What :func:`prepare` checked and found.

    :ivar tls: the checked TLS material (:class:`paxd.tls.wiring.PreparedTLS`) or ``None``.
    :ivar created_password: the admin password of an htpasswd file just created.
    :ivar warnings: every start-up warning, each a whole line (file or key first).
    """

    config: Config
    tls: Any = None
    created_password: str | None = None
    warnings: tuple[str, ...] = ()


def load(path: str | None, environ: Mapping[str, str]) -> Config:
    """The configuration in *path*; with ``None``, :data:`DEFAULT_CONFIG` or the built-in one.

    The built-in default is the vendor image's (``paxd.config.DEFAULT_CONFIG_TEXT``), so
    ``REGISTRY_*`` variables alone configure paxd as they do ``docker run -e``.
    """
    if path is None:
        if not os.path.lexists(DEFAULT_CONFIG):
            return load_default_config(environ)
        path = DEFAULT_CONFIG
    return load_config(path, environ)


def prepare(config: Config, *, create: bool) -> Prepared:
    """Check what the daemon needs; *create* what it would create (see the module docstring).

    :raises ConfigError: one line naming the file or key and the fix.
    """
    check_listeners(config)
    warnings = [f"{config.source}: {w}" for w in config.warnings]
    tls = _prepare_tls(config, create)
    if tls is not None:
        warnings += [f"{config.source}: {w}" for w in tls.warnings]
    _check_storage_root(config, create)
    password, htpasswd_warnings = _prepare_htpasswd(config, create)
    warnings += htpasswd_warnings
    descriptions = endpoint_descriptions(config.http)
    if config.auth is None and not all(is_loopback(d) for d in descriptions):
        warnings.append(
            f"NO AUTHENTICATION: {config.source} has no 'auth' section and paxd listens beyond"
            " loopback, so anyone who can reach it may push and delete. Add"
            " auth.htpasswd (see docs/configuration.rst)."
        )
    return Prepared(config, tls, password, tuple(warnings))


def _prepare_tls(config: Config, create: bool) -> Any:
    if config.http.tls is None:
        return None
    # Imported here: the ACME client (acme, josepy, requests) costs ~7 MiB of
    # resident memory that a daemon without http.tls should not pay.
    from paxd.tls.wiring import prepare_tls

    try:
        return prepare_tls(config, create=create)
    except TLSSetupError as e:
        raise ConfigError(config.source, "", str(e)) from None


def _fail(config: Config, key: str, message: str) -> ConfigError:
    return ConfigError(config.source, key, message)


def _check_storage_root(config: Config, create: bool) -> None:
    """The filesystem root exists (or is created) and takes a file; read-only mode: readable."""
    root = config.storage.rootdirectory
    if root is None:
        return
    owner = f"the user paxd runs as (uid {os.getuid()})"
    if config.storage.readonly:
        if not os.path.isdir(root) or not os.access(root, os.R_OK | os.X_OK):
            raise _fail(
                config,
                ROOT_KEY,
                f"{root} is not a readable directory; in read-only mode paxd creates nothing:"
                f" correct the path, or make it readable by {owner}",
            )
        return
    if not create:
        problem = None
        if os.path.isdir(root):
            if not os.access(root, os.W_OK | os.X_OK):
                problem = f"{root} is not writable by this user"
        elif os.path.lexists(root):
            problem = f"{root} is not a directory"
        else:
            problem = creation_problem(root)
        if problem is not None:
            raise _fail(config, ROOT_KEY, f"{problem}; {_root_fix(root, owner, None)}")
        return
    try:
        os.makedirs(root, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=_PROBE_PREFIX, dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise _fail(
            config,
            ROOT_KEY,
            f"cannot create or write into {root}: {e.strerror}; {_root_fix(root, owner, e)}",
        ) from None


def _root_fix(root: str, owner: str, error: OSError | None) -> str:
    if error is not None and error.errno == errno.EROFS:
        return (
            f"the file system is read-only here: under systemd add {root} to the unit's"
            " ReadWritePaths= (or use its StateDirectory, /var/lib/paxd), or choose another"
            " directory"
        )
    return f"create it writable by {owner}, or choose another directory"


def _prepare_htpasswd(config: Config, create: bool) -> tuple[str | None, list[str]]:
    """Create a missing htpasswd file (its admin password) and read it: its warnings."""
    if config.auth is None:
        return None, []
    path = config.auth.htpasswd.path
    password = None
    try:
        if create:
            password = ensure_htpasswd(path)
        elif not os.path.lexists(path):
            problem = creation_problem(path)
            if problem is not None:
                raise HtpasswdError(f"{path} does not exist and could not be created ({problem})")
            return None, [
                f"{config.source}: {HTPASSWD_KEY}: {path} does not exist; 'paxd serve' will create"
                " it with the user 'admin' and a random password, logged once"
            ]
        parsed = check_file(path)
    except HtpasswdError as e:
        if str(e).startswith(f"{path}, line"):
            fix = "correct that line: entries are 'user:bcrypt-hash', as 'htpasswd -B' writes"
        else:
            fix = (
                f"make the file readable by the user paxd runs as (uid {os.getuid()}), its"
                " directory writable if paxd is to create it, or correct the path"
            )
        raise _fail(config, HTPASSWD_KEY, f"{e}; {fix}") from None
    return password, list(parsed.warnings)


def written_paths(config: Config) -> list[tuple[str, str]]:
    """``(key, path)`` for every path paxd creates or writes with *config*.

    (Request bodies are spooled in the system's temporary directory besides these.)
    """
    paths: list[tuple[str, str]] = []
    if config.storage.rootdirectory is not None:
        paths.append((ROOT_KEY, config.storage.rootdirectory))
    if config.auth is not None:
        paths.append((HTPASSWD_KEY, config.auth.htpasswd.path))  # created when missing
    tls = config.http.tls
    if tls is not None and tls.letsencrypt is not None:
        paths.append(("http.tls.letsencrypt.cachefile", tls.letsencrypt.cachefile))
    for description in endpoint_descriptions(config.http):
        if description.startswith("unix:"):
            key = "http.listen" if config.http.listen else "http.addr"
            paths.append((key, _unix_path(description)))
    return paths


def _unix_path(description: str) -> str:
    """The socket path of a ``unix:`` endpoint description (its escapes undone)."""
    path: list[str] = []
    escaped = False
    for char in description[len("unix:") :]:
        if escaped:
            path.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            break
        else:
            path.append(char)
    return "".join(path).removeprefix("address=")


def check_listeners(config: Config) -> None:
    """Parse every endpoint description now, so a bad one is a message, not a traceback.

    :raises ConfigError: naming the key, e.g. a systemd socket index nothing passed in.
    """
    keys = "http.listen" if config.http.listen else "http.addr"
    for key, descriptions in (
        (keys, endpoint_descriptions(config.http)),
        ("http.redirect", config.http.redirect),
        ("http.debug.addr", config.http.debug.descriptions),
    ):
        for i, description in enumerate(descriptions):
            try:
                serverFromString(None, description)  # parsing only: nothing is bound
            except IndexError:
                raise ConfigError(
                    config.source,
                    f"{key}.{i}" if key != "http.addr" else key,
                    f"{description!r}: no such inherited socket; start paxd from its systemd"
                    " .socket unit (LISTEN_FDS), or listen on tcp:PORT",
                ) from None
            except (ValueError, KeyError, TypeError) as e:
                raise ConfigError(
                    config.source,
                    f"{key}.{i}" if key != "http.addr" else key,
                    f"{description!r} is not a usable Twisted endpoint description ({e})",
                ) from None


def is_loopback(description: str) -> bool:
    """True if an endpoint description binds only a loopback interface (or a unix socket)."""
    if description.startswith("unix:"):
        return True
    for part in description.replace("\\:", "\0").split(":"):
        if part.startswith("interface="):
            value = part[len("interface=") :].replace("\0", ":")
            return value.startswith("127.") or value in ("::1", "localhost")
    return False
