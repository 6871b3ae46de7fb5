"""The systemd units, made for the installation that prints them: ``paxd systemd-unit``.

One layout, shared with ``etc/paxd/config.yml`` and the docs:

- ``/etc/paxd`` holds the configuration and the TLS files, read-only to paxd;
- ``/var/lib/paxd`` (the unit's ``StateDirectory``) holds everything paxd
  writes: ``registry/`` (storage), ``acme/`` (Let's Encrypt), ``htpasswd``
  (created with an ``admin`` user when missing).

The units are templates here, so that a pip-installed paxd can print them:
``ExecStart`` is this installation's ``paxd`` script (or ``python -m paxd`` for
a checkout, with ``PYTHONPATH``), and ``ProtectHome`` relaxes to
``read-only`` when the interpreter or the code lives under a home directory.
The files in the repository's ``systemd/`` are these templates rendered for
``/usr/local/bin/paxd`` (a test keeps them equal). :func:`writable` models
the sandbox settings, so a test can check every path the sample writes.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

__all__ = [
    "LAYOUT",
    "NAMES",
    "Installation",
    "main",
    "parse_unit",
    "render",
    "writable",
]

NAMES = ("paxd.service", "paxd.socket", "paxd-activated.service")

#: where the sample configuration puts things (etc/paxd/config.yml agrees)
LAYOUT = {
    "config": "/etc/paxd/config.yml",
    "state": "/var/lib/paxd",
    "storage": "/var/lib/paxd/registry",
    "htpasswd": "/var/lib/paxd/htpasswd",
    "acme": "/var/lib/paxd/acme",
}

_HOMES = ("/home", "/root", "/run/user")


@attrs.frozen
class Installation:
    """How to start this paxd: the command, and what its environment needs."""

    command: tuple[str, ...]
    #: extra ``Environment=`` assignments (``PYTHONPATH`` for a checkout)
    environment: Mapping[str, str] = attrs.field(factory=dict)
    #: the unit must let paxd read a home directory (``ProtectHome=read-only``)
    in_home: bool = False

    @classmethod
    def standard(cls) -> Installation:
        """``pip install`` into ``/usr/local``: what the repository's ``systemd/`` files are."""
        return cls(("/usr/local/bin/paxd",))

    @classmethod
    def current(cls) -> Installation:
        """The interpreter and code running now (a virtual environment's, a checkout's)."""
        import paxd

        package_dir = str(Path(paxd.__file__).resolve().parent.parent)
        installed = any(Path(p).resolve() == Path(package_dir) for p in site.getsitepackages() if p)
        # the console script pip wrote beside this interpreter (a venv's bin/, /usr/local/bin)
        scripts = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
        found = [d / "paxd" for d in scripts if os.access(d / "paxd", os.X_OK)]
        environment: dict[str, str] = {}
        if installed and found:
            command: tuple[str, ...] = (str(found[0]),)
        else:
            command = (sys.executable, "-m", "paxd")
            if not installed:
                environment["PYTHONPATH"] = package_dir
        used = [os.path.realpath(sys.executable), package_dir, *command]
        in_home = any(p == h or p.startswith(h + "/") for p in used for h in _HOMES)
        return cls(command, environment, in_home)


_HEADERS = {
    "paxd.service": """\
# paxd binding its own ports (http.addr / http.redirect in /etc/paxd/config.yml,
# e.g. :443 and :80) as the unprivileged user paxd. For socket activation
# install paxd.socket and paxd-activated.service instead (they conflict with
# this unit): there the sockets come from systemd and paxd keeps no capability.
#
#   useradd --system --home-dir /var/lib/paxd --shell /usr/sbin/nologin paxd
#   systemctl enable --now paxd.service    # fails if paxd does not come up
#   systemctl reload paxd.service          # re-read http.tls.certificate and key (SIGHUP)
""",
    "paxd-activated.service": """\
# paxd started by paxd.socket: systemd binds 443 and 80 and passes them in,
# so paxd runs with an empty capability bounding set. The configuration file
# needs http.tls (certificate files or letsencrypt); the listeners come from
# the environment below, overriding http.addr and http.redirect.
""",
}

_UNIT = """
[Unit]
Description=@DESCRIPTION@
Documentation=file:///usr/share/doc/paxd/README.rst
@UNIT_EXTRA@After=@AFTER@network-online.target
Wants=network-online.target
Conflicts=@CONFLICTS@

[Service]
# READY=1 once every listener is bound and storage answered; paxd exits 1 if not.
Type=notify
NotifyAccess=main
User=paxd
Group=paxd
ExecStart=@EXEC@ serve @CONFIG@
ExecReload=/bin/kill -HUP $MAINPID
@ENVIRONMENT@Restart=on-failure
RestartSec=5s
TimeoutStartSec=60s
TimeoutStopSec=30s

@CAPABILITIES@
# Hardening. paxd writes only under /var/lib/paxd (its StateDirectory): storage
# (registry/), the ACME cache (acme/), a generated htpasswd. /etc/paxd, with the
# configuration and TLS files, is read-only to it; so is the rest of the system.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/var/lib/paxd
StateDirectory=paxd
StateDirectoryMode=0750
ConfigurationDirectory=paxd
ConfigurationDirectoryMode=0755
@PROTECT_HOME@
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
UMask=0027
LimitNOFILE=65536
"""

_SOCKET = """\
# Sockets for socket-activated paxd: 443 (https) is file descriptor 0 and
# 80 (ACME HTTP-01 and redirects to https) is file descriptor 1, in the
# order of the ListenStream lines. paxd-activated.service points paxd at
# them with REGISTRY_HTTP_LISTEN and REGISTRY_HTTP_REDIRECT_LISTEN.
#
#   systemctl enable --now paxd.socket

[Unit]
Description=paxd pack registry sockets (443 https, 80 http)
Documentation=file:///usr/share/doc/paxd/README.rst
Conflicts=paxd.service

[Socket]
ListenStream=443
ListenStream=80
BindIPv6Only=both
NoDelay=true
Service=paxd-activated.service

[Install]
WantedBy=sockets.target
"""


def _quote(word: str) -> str:
    """A word of a systemd command line (quoted if it holds spaces or quotes)."""
    if word and not any(c in word for c in " \t\"'\\;$%"):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def render(name: str, installation: Installation, config: str = LAYOUT["config"]) -> str:
    """The text of unit *name* for *installation*, starting paxd with *config*."""
    if name == "paxd.socket":
        return _SOCKET
    activated = name == "paxd-activated.service"
    environment = [f"{k}={v}" for k, v in installation.environment.items()]
    if activated:
        environment += [
            "REGISTRY_HTTP_LISTEN=[systemd:domain=INET:index=0]",
            "REGISTRY_HTTP_REDIRECT_LISTEN=[systemd:domain=INET:index=1]",
        ]
    if activated:
        capabilities = (
            "# No capability at all: the privileged ports are already bound.\n"
            "CapabilityBoundingSet=\nAmbientCapabilities=\n"
        )
    else:
        capabilities = (
            "# Ports 443 and 80 without root: this one capability and no other.\n"
            "AmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
        )
    protect_home = (
        "# This installation lives under a home directory: paxd must be able to read it.\n"
        "ProtectHome=read-only"
        if installation.in_home
        else "ProtectHome=yes"
    )
    values = {
        "@DESCRIPTION@": "paxd pack registry" + (" (socket-activated)" if activated else ""),
        "@UNIT_EXTRA@": "Requires=paxd.socket\n" if activated else "",
        "@AFTER@": "paxd.socket " if activated else "",
        "@CONFLICTS@": "paxd.service" if activated else "paxd-activated.service",
        "@EXEC@": " ".join(_quote(w) for w in installation.command),
        "@CONFIG@": _quote(config),
        "@ENVIRONMENT@": "".join(f"Environment={_quote(e)}\n" for e in environment),
        "@CAPABILITIES@": capabilities,
        "@PROTECT_HOME@": protect_home,
    }
    text = _UNIT
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    install = "" if activated else "\n[Install]\nWantedBy=multi-user.target\n"
    return _HEADERS[name] + text + install


def parse_unit(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit's text (all sections), values in order."""
    settings: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots if r)


def writable(settings: Mapping[str, Sequence[str]], path: str) -> bool:
    """Whether the unit's sandbox (*settings* from :func:`parse_unit`) lets paxd write *path*.

    Models ``ProtectSystem=``, ``ProtectHome=``, ``PrivateTmp=``, ``ReadWritePaths=``,
    ``ReadOnlyPaths=`` and the ``StateDirectory=``-style directories.
    """
    path = os.path.normpath(path)
    words = [w.lstrip("-+") for v in settings.get("ReadWritePaths", ()) for w in v.split()]
    for key, base in (
        ("StateDirectory", "/var/lib"),
        ("CacheDirectory", "/var/cache"),
        ("LogsDirectory", "/var/log"),
        ("RuntimeDirectory", "/run"),
    ):
        words += [f"{base}/{w}" for v in settings.get(key, ()) for w in v.split()]
    last = {k: v[-1] for k, v in settings.items() if v}
    if last.get("PrivateTmp") in ("yes", "true", "1"):
        words += ["/tmp", "/var/tmp"]
    read_only = [w.lstrip("-+") for v in settings.get("ReadOnlyPaths", ()) for w in v.split()]
    if _under(path, read_only):
        return False
    if _under(path, words):
        return True
    if last.get("ProtectHome", "no") not in ("no", "false", "0") and _under(path, _HOMES):
        return False
    protect = last.get("ProtectSystem", "no")
    if protect == "strict":
        return _under(path, ("/dev", "/proc", "/sys"))
    if protect in ("yes", "true", "full"):
        system = ["/usr", "/boot", "/efi"] + (["/etc"] if protect == "full" else [])
        return not _under(path, system)
    return True


def main(name: str, directory: str | None, config: str) -> int:
    """``paxd systemd-unit [NAME] [--dir DIR]``."""
    installation = Installation.current()
    config = os.path.abspath(config)
    if not config.startswith("/etc/"):
        print(
            f"paxd: warning: {config} is outside /etc: the unit can read it only if"
            " ProtectHome= and the directory's permissions let the user paxd",
            file=sys.stderr,
        )
    if installation.in_home:
        print(
            "paxd: warning: this installation lives under a home directory, so the unit uses"
            " ProtectHome=read-only; install paxd elsewhere (e.g. a venv in /opt/paxd) to keep"
            " ProtectHome=yes",
            file=sys.stderr,
        )
    if directory is None:
        print(render(name, installation, config), end="")
        return 0
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    for unit in NAMES:
        (target / unit).write_text(render(unit, installation, config))
        print(f"wrote {target / unit}")
    return 0
