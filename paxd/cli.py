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
        help="validate a configuration file and print its warnings",
        description="Load the configuration (with REGISTRY_* overrides) as 'serve' would, print"
        " every warning, and exit 0 if the daemon would start, 1 if not.",
    )
    check.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help="configuration file")
    sub.add_parser(
        "htpasswd",
        help="add, change, remove and list htpasswd (bcrypt) users; the password from"
        " --password-stdin or a piped standard input (echo PW | paxd htpasswd FILE add USER)",
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
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``paxd`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["cert", "self-signed"]:
        from paxd.tls.selfsigned import main as self_signed_main

        return self_signed_main(argv[2:], prog="paxd cert self-signed")
    if argv[:1] == ["htpasswd"]:
        from paxd.auth.users import main as htpasswd_main

        return htpasswd_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.config, args.workers, args.worker, args.adopt)
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
    from paxd.workers import check_workers

    refused = check_workers(config, config.http.workers, f"{config.source}: http.workers")
    if refused is not None:
        print(f"paxd: {refused}", file=sys.stderr)
        return 1
    print(
        f"{config.source}: OK ({config.storage.driver} storage, listening on"
        f" {', '.join(endpoint_descriptions(config.http))})"
    )
    return 0


def log_observer(config: Any, stream: Any = None, worker: int | None = None) -> Any:
    """The observer ``log`` asks for: its level, text or JSON lines, and its extra fields.

    A worker of ``--workers`` tags its events: ``worker`` in JSON, ``[wN:namespace#level]``
    in text.
    """
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
    if worker is not None:
        fields["worker"] = worker

    @provider(ILogObserver)
    def with_fields(event: dict[str, Any]) -> None:
        # the configured fields (e.g. service: registry) on every event, never over its own
        if fields:
            event = {**{k: v for k, v in fields.items() if k not in event}, **event}
        if worker is not None and "log_system" not in event:
            level = event.get("log_level")
            name = level.name if level is not None else "-"
            event["log_system"] = f"w{worker}:{event.get('log_namespace', '-')}#{name}"
        sink(event)

    return FilteringLogObserver(with_fields, [predicate])


def serve(
    path: str, workers: int | None = None, worker: str | None = None, adopt: list[str] | None = None
) -> int:
    """``paxd serve``: run until SIGINT or SIGTERM (as N workers, or as one of them)."""
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
