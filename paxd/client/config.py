"""Registry addresses, stored credentials and trusted CAs.

The credentials file has the vendor CLI's shape::

    {"auths": {"<host:port>": {"auth": "<base64 user:password>", "insecure": true}},
     "defaultRegistry": "<host:port>"}

Where (the *home*, ``-s/--home DIR``, by default ``~/.spectro`` as the
vendor CLI's):

- written: ``HOME/config.json`` (mode 0600, by ``login``) and
  ``HOME/certs.d/<SERVER>/ca.crt`` (``login --ca-cert``);
- read: those, then, with the default home only, what paxctl 0.x wrote:
  ``~/.config/paxctl/config.json`` (``$XDG_CONFIG_HOME``) for servers the
  home's file does not know, and ``~/.config/paxctl/certs.d``; a ``logout``
  forgets a server in both files;
- CAs: also ``/etc/spectro/certs.d/<SERVER>/ca.crt``, as the vendor CLI.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from paxd.client.errors import PaxctlError, UsageError

#: where the vendor CLI (and so the operators' instructions) put trusted CAs
SYSTEM_CERTS_D = Path("/etc/spectro/certs.d")


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/paxctl``, by default ``~/.config/paxctl``."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "paxctl"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/paxctl``, by default ``~/.cache/paxctl`` (upload state for resuming)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "paxctl"


def default_home() -> Path:
    """``~/.spectro``: the vendor CLI's home, and paxctl's by default (``-s/--home``)."""
    return Path(os.path.expanduser("~")) / ".spectro"


def vendor_config_path() -> Path:
    """The vendor CLI's credentials file, ``~/.spectro/config.json``."""
    return default_home() / "config.json"


def legacy_config_path() -> Path:
    """Where paxctl 0.x kept credentials (``~/.config/paxctl/config.json``): still read."""
    return config_dir() / "config.json"


@attrs.frozen
class Server:
    """A registry address as the user gave it: ``host[:port]``, maybe with a scheme."""

    #: ``host[:port]``: the key in the credentials file and the certs.d directory name
    key: str
    host: str
    port: int | None
    #: ``"http"`` or ``"https"`` when the user said so, else ``None``
    scheme: str | None

    def port_for(self, scheme: str) -> int:
        """The TCP port to use for *scheme*."""
        if self.port is not None:
            return self.port
        return 443 if scheme == "https" else 80


def parse_server(text: str) -> Server:
    """Parse ``host``, ``host:port``, ``[v6]:port`` or ``http(s)://host:port[/]``."""
    raw = text.strip()
    scheme = None
    if "://" in raw:
        scheme, _, rest = raw.partition("://")
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise UsageError(f"{text!r}: the scheme must be http or https")
        raw = rest
    raw = raw.rstrip("/")
    if not raw or "/" in raw or "@" in raw or "?" in raw or "#" in raw:
        raise UsageError(f"{text!r} is not a registry address: give host:port or https://host:port")
    parts = urlsplit("//" + raw)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise UsageError(f"{text!r}: the port must be a number from 1 to 65535") from None
    if not host:
        raise UsageError(f"{text!r} is not a registry address: give host:port or https://host:port")
    if port == 0:
        raise UsageError(f"{text!r}: the port must be a number from 1 to 65535")
    return Server(key=raw.lower(), host=host, port=port, scheme=scheme)


@attrs.frozen
class Credentials:
    """A username and password for HTTP Basic."""

    username: str
    password: str

    def encode(self) -> str:
        """The base64 ``user:password`` of the credentials file."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")

    @classmethod
    def decode(cls, auth: str) -> Credentials | None:
        """The inverse of :meth:`encode`, or ``None`` for a malformed value."""
        try:
            text = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        username, sep, password = text.partition(":")
        return cls(username, password) if sep else None


@attrs.frozen
class AuthEntry:
    """What the credentials file says about one server."""

    credentials: Credentials | None
    #: plain HTTP or an unverified certificate is acceptable (the vendor CLI's ``insecure``)
    insecure: bool = False
    #: the server was found to speak plain HTTP (paxctl's own key, ``plainHttp``)
    plain_http: bool = False

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.credentials is not None:
            d["auth"] = self.credentials.encode()
        if self.insecure:
            d["insecure"] = True
        if self.plain_http:
            d["plainHttp"] = True
        return d

    @classmethod
    def from_json(cls, value: Any) -> AuthEntry | None:
        if not isinstance(value, dict):
            return None
        auth = value.get("auth")
        creds = Credentials.decode(auth) if isinstance(auth, str) and auth else None
        return cls(creds, bool(value.get("insecure")), bool(value.get("plainHttp")))


class CredentialStore:
    """The credentials file, with a second one read after it (see the module docstring).

    :param path: the file written (default ``~/.spectro/config.json``).
    :param vendor_path: a file read for servers *path* does not know (default
        paxctl 0.x's ``~/.config/paxctl/config.json``); a logout forgets a
        server there too.
    :param certs_dirs: more ``certs.d`` directories to trust CAs from, after
        ``/etc/spectro/certs.d`` and the one beside *path*.
    """

    def __init__(
        self,
        path: Path | None = None,
        vendor_path: Path | None = None,
        certs_dirs: list[Path] | None = None,
    ) -> None:
        self.path = path if path is not None else vendor_config_path()
        self.vendor_path = vendor_path if vendor_path is not None else legacy_config_path()
        self.certs_dirs = list(certs_dirs or [])

    @classmethod
    def for_home(cls, home: Path | None) -> CredentialStore:
        """The store of ``-s/--home`` *home*; None for the default (which reads paxctl 0.x's too).

        An explicit home is read alone: nothing outside it (but ``/etc/spectro/certs.d``).
        """
        if home is None:
            return cls(vendor_config_path(), legacy_config_path(), [config_dir() / "certs.d"])
        home = home.expanduser()
        return cls(home / "config.json", home / "config.json")

    @property
    def home(self) -> Path:
        """The directory of the credentials file and its ``certs.d``."""
        return self.path.parent

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PaxctlError(f"cannot read {path}: {e}") from None
        if not isinstance(data, dict):
            raise PaxctlError(f"cannot read {path}: not a JSON object")
        return data

    def load(self) -> dict[str, Any]:
        """Our file's contents (empty if there is none)."""
        return self._read(self.path)

    def _paths(self) -> tuple[Path, ...]:
        return (self.path,) if self.vendor_path == self.path else (self.path, self.vendor_path)

    def get(self, key: str) -> AuthEntry | None:
        """The entry for server *key*: from our file, else the one read after it."""
        for path in self._paths():
            auths = self._read(path).get("auths")
            if isinstance(auths, dict) and key in auths:
                return AuthEntry.from_json(auths[key])
        return None

    def default(self) -> str | None:
        """The default registry: from our file, else the one read after it."""
        for path in self._paths():
            value = self._read(path).get("defaultRegistry")
            if isinstance(value, str) and value:
                return value
        return None

    def save(self, key: str, entry: AuthEntry, make_default: bool) -> None:
        """Store *entry* for *key*; it becomes the default if asked or if there is none yet."""
        data = self.load()
        auths = data.setdefault("auths", {})
        if not isinstance(auths, dict):
            auths = data["auths"] = {}
        auths[key] = entry.to_json()
        if make_default or not data.get("defaultRegistry"):
            data["defaultRegistry"] = key
        self._write(data)

    def remove(self, key: str) -> bool:
        """Forget *key* in both files; true if it was in either."""
        found = False
        for path in self._paths():
            data = self._read(path)
            auths = data.get("auths")
            if not isinstance(auths, dict) or key not in auths:
                continue
            del auths[key]
            if data.get("defaultRegistry") == key:
                del data["defaultRegistry"]
            self._write(data, path)
            found = True
        return found

    def _write(self, data: dict[str, Any], path: Path | None = None) -> None:
        # The file holds passwords: created 0600 from the start, replaced atomically.
        path = path if path is not None else self.path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    # -- trusted CAs ----------------------------------------------------------------

    def ca_files(self, server: Server) -> list[Path]:
        """The CA files trusted for *server*, from the system and the user certs.d."""
        names = [server.key] if server.key == server.host else [server.key, server.host]
        found = []
        for base in (SYSTEM_CERTS_D, self.home / "certs.d", *self.certs_dirs):
            for name in names:
                candidate = base / name / "ca.crt"
                if candidate.is_file():
                    found.append(candidate)
        return found

    def install_ca(self, server: Server, ca_file: Path) -> Path:
        """Copy *ca_file* to ``certs.d/<SERVER>/ca.crt`` beside our file, for later commands."""
        dest = self.home / "certs.d" / server.key / "ca.crt"
        dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if dest.exists() and dest.resolve() == ca_file.resolve():
            return dest
        shutil.copyfile(ca_file, dest)
        os.chmod(dest, 0o644)
        return dest
