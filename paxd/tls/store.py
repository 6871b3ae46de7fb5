"""Where ACME certificates and the account key live: a directory, or memory (tests).

The directory store uses the layout of Go's ``autocert.DirCache``, which
Docker distribution's ``http.tls.letsencrypt.cachefile`` directory holds: the
account key in ``acme_account+key`` and each certificate in a file named
after its (first) host, private key first, then the chain. A registry
moving from distribution to paxd keeps its certificates and its account.
The directory is 0700 and every file 0600: they all hold private keys.
"""

from __future__ import annotations

import os
import re

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from zope.interface import Interface, implementer

from paxd.config.files import creation_problem
from paxd.threadpool import PoolRunner, SynchronousRunner
from paxd.tls.certificates import CertificateBundle, TLSSetupError, parse_bundle

__all__ = [
    "ACCOUNT_KEY",
    "DirectoryStore",
    "ICertificateStore",
    "MemoryStore",
    "check_directory",
    "prepare_directory",
]

#: autocert's name for the account key file
ACCOUNT_KEY = "acme_account+key"
_NAME = re.compile(r"^[a-z0-9*][a-z0-9.*-]{0,252}$")


class ICertificateStore(Interface):
    """Certificates by host name and the ACME account key (txacme's ``ICertificateStore``)."""

    def get(name: str) -> Deferred[CertificateBundle | None]:
        """The bundle stored for *name*, or ``None``."""

    def store(name: str, bundle: CertificateBundle) -> Deferred[None]:
        """Store *bundle* for *name*, replacing what was there."""

    def as_dict() -> Deferred[dict[str, CertificateBundle]]:
        """Every stored bundle, by name."""

    def get_account_key() -> Deferred[bytes | None]:
        """The ACME account key (PEM), or ``None`` if there is none yet."""

    def store_account_key(pem: bytes) -> Deferred[None]:
        """Keep the ACME account key (PEM)."""


def prepare_directory(path: str) -> None:
    """Create the cache directory 0700, or tighten an existing one (blocking).

    :raises TLSSetupError: it cannot be created or is not a directory.
    """
    key = "http.tls.letsencrypt.cachefile"
    if os.path.exists(path) and not os.path.isdir(path):
        raise TLSSetupError(
            f"{key}: {path} is a file; it must be a directory (paxd keeps the ACME account key"
            " and certificates in it)"
        )
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o700)
    except OSError as e:
        raise TLSSetupError(
            f"{key}: cannot create or secure the directory {path}: {e.strerror}; create it,"
            " owned by the user paxd runs as"
        ) from None


def check_directory(path: str) -> None:
    """What :func:`prepare_directory` would refuse, without creating anything.

    :raises TLSSetupError: it is a file, or could not be created.
    """
    key = "http.tls.letsencrypt.cachefile"
    if os.path.isdir(path):
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            raise TLSSetupError(
                f"{key}: the directory {path} is not writable by this user (uid {os.getuid()});"
                " make it owned by the user paxd runs as"
            )
        return
    if os.path.lexists(path):
        raise TLSSetupError(
            f"{key}: {path} is a file; it must be a directory (paxd keeps the ACME account key"
            " and certificates in it)"
        )
    problem = creation_problem(path)
    if problem is not None:
        raise TLSSetupError(
            f"{key}: the directory {path} could not be created ({problem}); create it, owned by"
            " the user paxd runs as"
        )


def _check_name(name: str) -> str:
    name = name.lower()
    if not _NAME.match(name) or ".." in name:
        raise ValueError(f"not a host name: {name!r}")
    return name


@implementer(ICertificateStore)
class MemoryStore:
    """An in-memory store, for tests (and a model of the interface's behaviour)."""

    def __init__(self) -> None:
        self.bundles: dict[str, CertificateBundle] = {}
        self.account_key: bytes | None = None

    def get(self, name: str) -> Deferred[CertificateBundle | None]:
        return maybeDeferred(lambda: self.bundles.get(_check_name(name)))

    def store(self, name: str, bundle: CertificateBundle) -> Deferred[None]:
        def store() -> None:
            self.bundles[_check_name(name)] = bundle

        return maybeDeferred(store)

    def as_dict(self) -> Deferred[dict[str, CertificateBundle]]:
        return succeed(dict(self.bundles))

    def get_account_key(self) -> Deferred[bytes | None]:
        return succeed(self.account_key)

    def store_account_key(self, pem: bytes) -> Deferred[None]:
        self.account_key = pem
        return succeed(None)


@implementer(ICertificateStore)
class DirectoryStore:
    """A directory (``http.tls.letsencrypt.cachefile``), every file access in *runner*'s pool."""

    def __init__(self, path: str, runner: PoolRunner | SynchronousRunner) -> None:
        self.path = path
        self.runner = runner

    def prepare(self) -> None:
        """Create the directory 0700, or tighten an existing one (blocking)."""
        prepare_directory(self.path)

    def _read(self, name: str) -> bytes | None:
        try:
            with open(os.path.join(self.path, name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def _write(self, name: str, data: bytes) -> None:
        self.prepare()
        final = os.path.join(self.path, name)
        temporary = f"{final}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, final)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise

    def _get(self, name: str) -> CertificateBundle | None:
        data = self._read(_check_name(name))
        if data is None:
            return None
        label = os.path.join(self.path, name)
        return parse_bundle(data, data, certificate_label=label, key_label=label)

    def get(self, name: str) -> Deferred[CertificateBundle | None]:
        return self.runner.run(self._get, name)

    def _store(self, name: str, bundle: CertificateBundle) -> None:
        # autocert's format: the key, then the chain
        self._write(_check_name(name), bundle.key_pem() + bundle.chain_pem())

    def store(self, name: str, bundle: CertificateBundle) -> Deferred[None]:
        return self.runner.run(self._store, name, bundle)

    def _as_dict(self) -> dict[str, CertificateBundle]:
        bundles: dict[str, CertificateBundle] = {}
        try:
            names = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return bundles
        for name in names:
            if name == ACCOUNT_KEY or name.endswith(".tmp") or not _NAME.match(name):
                continue
            try:
                bundle = self._get(name)
            except (TLSSetupError, ValueError):
                continue  # not ours (or damaged): issuing replaces it
            if bundle is not None:
                bundles[name] = bundle
        return bundles

    def as_dict(self) -> Deferred[dict[str, CertificateBundle]]:
        return self.runner.run(self._as_dict)

    def get_account_key(self) -> Deferred[bytes | None]:
        return self.runner.run(self._read, ACCOUNT_KEY)

    def store_account_key(self, pem: bytes) -> Deferred[None]:
        return self.runner.run(self._write, ACCOUNT_KEY, pem)
