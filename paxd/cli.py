"""``paxd``: the daemon's front door — ``serve``, ``check-config``, ``htpasswd``, ``cert``,
``systemd-unit``, ``--version``.

``paxd serve FILE`` runs the same service tree as ``twistd -n paxd --config FILE``,
in the foreground, logging to standard error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from paxd import __version__

#: where paxd looks when no file is named (paxd.preflight.DEFAULT_CONFIG, not imported:
#: ``paxd --help`` stays fast)
DEFAULT_CONFIG = "/etc/paxd/config.yml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paxd",
        description="paxd, a pack registry daemon: Docker distribution's API under /v1/ and /v2/.",
        epilog="Without a configuration file, paxd reads /etc/paxd/config.yml, or when that does"
        " not exist runs on the vendor image's built-in defaults; REGISTRY_* environment"
        " variables override either, as in Docker distribution. Exit codes: 0 success, 1 failure"
        " (a configuration the daemon refuses, a port it cannot bind, storage it cannot use),"
        " 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"paxd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the registry in the foreground",
        description="Run the registry in the foreground, logging to standard error as log.level,"
        " log.formatter (text, json, logstash) and log.fields say. It exits 1, with one line"
        " naming the key and the fix, if a listener cannot bind or storage does not answer, and"
        " tells systemd READY=1 ($NOTIFY_SOCKET) once every listener is bound and storage answered."
        " REGISTRY_* environment variables override the file, as in Docker distribution.",
    )
    serve.add_argument("config", nargs="?", default=None, help=_CONFIG_HELP)
    serve.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="processes sharing the listening ports, so that every core works (default:"
        " http.workers, 1); more than one needs redis: (docs/replicas.rst)",
    )
    # how the parent of --workers starts each worker (not for people)
    serve.add_argument("--worker", help=argparse.SUPPRESS)
    serve.add_argument("--adopt", action="append", default=[], help=argparse.SUPPRESS)
    check = sub.add_parser(
        "check-config",
        help="print the configuration the daemon would run with, and every warning",
        description="Load the configuration (with REGISTRY_* overrides) and check it as 'serve'"
        " would — TLS files, the htpasswd file, the storage root, the listeners' descriptions —"
        " without changing anything on disk. Prints every warning 'serve' would log (standard"
        " error), the configuration it would run with, secrets masked (standard output), and"
        " exits 0 if the daemon would start, 1 if not.",
    )
    check.add_argument("config", nargs="?", default=None, help=_CONFIG_HELP)
    cert = sub.add_parser(
        "cert",
        help="make TLS certificates ('paxd cert self-signed --help')",
        description="'paxd cert self-signed --host NAME --ip ADDR' writes a CA and a server"
        " certificate with the right subjectAltNames and says how to trust it.",
    )
    cert.add_argument("action", choices=["self-signed"], help="what to make")
    _add_unit_parser(sub)
    # commands with parsers of their own: listed here, parsed by their modules
    for name, what in (
        ("htpasswd", "add, change, remove and list htpasswd (bcrypt) users"),
        ("gc", "collect garbage: delete unreferenced blobs ('paxd gc --help')"),
    ):
        sub.add_parser(name, help=what, add_help=False, description=f"See 'paxd {name} --help'.")
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _add_unit_parser(sub: Any) -> None:
    unit = sub.add_parser(
        "systemd-unit",
        help="print systemd units that run this installation of paxd",
        description="Print a systemd unit whose ExecStart is this installation's paxd (this"
        " Python, this virtual environment), with the layout of etc/paxd/config.yml: the"
        " configuration in /etc/paxd, everything paxd writes under /var/lib/paxd. With --dir,"
        " write paxd.service, paxd.socket and paxd-activated.service there instead.",
    )
    unit.add_argument(
        "name",
        nargs="?",
        default="paxd.service",
        choices=["paxd.service", "paxd.socket", "paxd-activated.service"],
        help="the unit to print (default paxd.service)",
    )
    unit.add_argument("--dir", help="write all three units into this directory")
    unit.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"the configuration file ExecStart names (default {DEFAULT_CONFIG})",
    )


_CONFIG_HELP = (
    f"configuration file (default {DEFAULT_CONFIG}, or the built-in defaults when it does not"
    " exist)"
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``paxd`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["cert", "self-signed"]:
        from paxd.tls.selfsigned import main as self_signed_main

        return self_signed_main(argv[2:], prog="paxd cert self-signed")
    if argv[:1] == ["gc"]:
        from paxd.collect import main as gc_main

        return gc_main(argv[1:])
    if argv[:1] == ["htpasswd"]:
        from paxd.auth.users import main as htpasswd_main

        return htpasswd_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.config, args.workers, args.worker, args.adopt)
    if args.command == "check-config":
        return check_config(args.config)
    if args.command == "systemd-unit":
        from paxd.systemd.units import main as units_main

        return units_main(args.name, args.dir, args.config)
    parser.print_help(sys.stderr)
    return 2


def _options(path: str | None) -> Any:
    from twisted.python import usage

    from paxd.tap import Options

    options = Options()
    try:
        options.parseOptions(["--config", path] if path is not None else [])
    except usage.UsageError as e:
        print(f"paxd: {e}", file=sys.stderr)
        return None
    except SystemExit as e:  # a configuration the daemon refuses: one line, no traceback
        print(e.code, file=sys.stderr)
        return None
    return options


def check_config(path: str | None) -> int:
    """``paxd check-config``: 0 if the daemon would start with *path*; changes nothing on disk."""
    import os

    from paxd.config import ConfigError
    from paxd.config.dump import as_yaml
    from paxd.listeners import endpoint_descriptions
    from paxd.preflight import load, prepare

    try:
        config = load(path, os.environ)
        prepared = prepare(config, create=False)
    except ConfigError as e:
        print(f"paxd: {e}", file=sys.stderr)
        return 1
    for warning in prepared.warnings:
        print(f"paxd: warning: {warning}", file=sys.stderr)
    from paxd.workers import check_workers

    refused = check_workers(config, config.http.workers, f"{config.source}: http.workers")
    if refused is not None:
        print(f"paxd: {refused}", file=sys.stderr)
        return 1
    print(f"# The configuration paxd would run with: {config.source}, REGISTRY_* variables")
    print("# applied, every default filled in, secrets masked.")
    print(as_yaml(config), end="")
    print(
        f"# {config.source}: OK ({config.storage.driver} storage, listening on"
        f" {', '.join(endpoint_descriptions(config.http))})"
    )
    return 0


def log_observer(config: Any, stream: Any = None, worker: int | None = None) -> Any:
    """The observer ``log`` asks for (see :mod:`paxd.logs`), on standard error by default.

    A worker of ``--workers`` tags its events: ``worker`` in JSON, ``[wN:namespace#level]``
    in text.
    """
    from paxd.logs import log_observer as observer

    return observer(config, sys.stderr if stream is None else stream, worker=worker)


def serve(
    path: str | None,
    workers: int | None = None,
    worker: str | None = None,
    adopt: list[str] | None = None,
) -> int:
    """``paxd serve``: run until SIGINT or SIGTERM (as N workers, or as one of them).

    1 if start-up failed.
    """
    options = _options(path)
    if options is None:
        return 1
    config = options["parsed"]
    count = workers if workers is not None else config.http.workers
    if worker is None and count > 1:
        from paxd.workers.run import serve_workers

        where = f"--workers {count}" if workers is not None else f"{config.source}: http.workers"
        return serve_workers(path, options, count, where, log_observer(config.log))
    if worker is not None:
        from paxd.workers.run import as_worker

        as_worker(options, worker, adopt or [])
    return _run(options)


def _run(options: Any) -> int:
    """Run the service tree of *options* on the reactor, logging to standard error."""
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner

    from paxd.tap import makeService

    index = options["worker"][0] if options.get("worker") else None
    globalLogBeginner.beginLoggingTo(
        [log_observer(options["parsed"].log, worker=index)], redirectStandardIO=False
    )
    service = makeService(options, reactor)
    startup = service.getServiceNamed("paxd-startup")  # type: ignore[attr-defined]
    failed: list[BaseException] = []

    def start() -> None:
        try:
            service.startService()
        except Exception as e:  # a bug: listeners and storage report through Startup
            failed.append(e)
            print(f"paxd: cannot start: {e}", file=sys.stderr)
            reactor.stop()

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
    return 1 if failed or startup.exit_status else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
