"""``paxd``: the daemon's front door — ``serve``, ``check-config``, ``htpasswd``, ``--version``.

``paxd serve FILE`` runs the same service tree as ``twistd -n paxd --config FILE``,
in the foreground, logging to standard error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from paxd import __version__

DEFAULT_CONFIG = "/etc/paxd/config.yml"
LEVELS = {"debug", "info", "warn", "error"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paxd",
        description="paxd, a pack registry daemon: Docker distribution's API under /v1/ and /v2/.",
        epilog="Exit codes: 0 success, 1 failure (including a configuration the daemon refuses),"
        " 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"paxd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the registry in the foreground",
        description="Run the registry in the foreground, logging to standard error."
        " REGISTRY_* environment variables override the file, as in Docker distribution.",
    )
    serve.add_argument(
        "config",
        nargs="?",
        default=DEFAULT_CONFIG,
        help=f"configuration file (default {DEFAULT_CONFIG})",
    )
    check = sub.add_parser(
        "check-config",
        help="validate a configuration file and print its warnings",
        description="Load the configuration (with REGISTRY_* overrides) as 'serve' would, print"
        " every warning, and exit 0 if the daemon would start, 1 if not.",
    )
    check.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help="configuration file")
    sub.add_parser(
        "htpasswd",
        help="add, change, remove and list htpasswd (bcrypt) users",
        add_help=False,
        description="See 'paxd htpasswd --help'.",
    )
    cert = sub.add_parser(
        "cert",
        help="make TLS certificates ('paxd cert self-signed --help')",
        description="'paxd cert self-signed --host NAME --ip ADDR' writes a CA and a server"
        " certificate with the right subjectAltNames and says how to trust it.",
    )
    cert.add_argument("action", choices=["self-signed"], help="what to make")
    sub.add_parser(
        "gc",
        help="collect garbage: delete unreferenced blobs ('paxd gc --help')",
        add_help=False,
        description="See 'paxd gc --help'.",
    )
    return parser


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
        return serve(args.config)
    if args.command == "check-config":
        return check_config(args.config)
    parser.print_help(sys.stderr)
    return 2


def _options(path: str) -> Any:
    from twisted.python import usage

    from paxd.tap import Options

    options = Options()
    try:
        options.parseOptions(["--config", path])
    except usage.UsageError as e:
        print(f"paxd: {e}", file=sys.stderr)
        return None
    except SystemExit as e:  # a configuration the daemon refuses: one line, no traceback
        print(e.code, file=sys.stderr)
        return None
    return options


def check_config(path: str) -> int:
    """``paxd check-config``: 0 if the daemon would start with *path*."""
    from paxd.listeners import endpoint_descriptions

    options = _options(path)
    if options is None:
        return 1
    config = options["parsed"]
    for warning in config.warnings:
        print(f"paxd: warning: {config.source}: {warning}", file=sys.stderr)
    print(
        f"{config.source}: OK ({config.storage.driver} storage, listening on"
        f" {', '.join(endpoint_descriptions(config.http))})"
    )
    return 0


def log_observer(config: Any, stream: Any = None) -> Any:
    """The observer ``log`` asks for: its level, text or JSON lines, and its extra fields."""
    from twisted.logger import (
        FilteringLogObserver,
        ILogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        jsonFileLogObserver,
        textFileLogObserver,
    )
    from zope.interface import provider

    stream = sys.stderr if stream is None else stream
    level = str(config.level or "info").lower()
    predicate = LogLevelFilterPredicate(
        defaultLogLevel=LogLevel.levelWithName(level if level in LEVELS else "info")
    )
    if str(config.formatter or "text").lower() in ("json", "logstash"):
        sink = jsonFileLogObserver(stream)
    else:
        sink = textFileLogObserver(stream)
    fields = dict(config.fields or {})

    @provider(ILogObserver)
    def with_fields(event: dict[str, Any]) -> None:
        # the configured fields (e.g. service: registry) on every event, never over its own
        sink({**{k: v for k, v in fields.items() if k not in event}, **event} if fields else event)

    return FilteringLogObserver(with_fields, [predicate])


def serve(path: str) -> int:
    """``paxd serve``: run until SIGINT or SIGTERM."""
    options = _options(path)
    if options is None:
        return 1
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner

    from paxd.tap import makeService

    globalLogBeginner.beginLoggingTo(
        [log_observer(options["parsed"].log)], redirectStandardIO=False
    )
    service = makeService(options, reactor)
    failed: list[BaseException] = []

    def start() -> None:
        try:
            service.startService()
        except Exception as e:  # a port in use, a socket we may not bind
            failed.append(e)
            print(f"paxd: cannot start: {e}", file=sys.stderr)
            reactor.stop()

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
