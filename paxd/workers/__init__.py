"""Several processes on one host: ``paxd serve --workers N`` (see :mod:`paxd.workers.supervisor`).

:func:`check_workers` is what a configuration must have for that, one line
each when it does not: shared state in Redis (else each worker would keep a
catalog, ``_packs`` index and tag locks of its own), storage every process
sees (not ``inmemory``), and with Let's Encrypt a port-80 listener, because
only worker 0 asks for certificates and answers the challenges (the others
take its certificates from the cache).
"""

from __future__ import annotations

from paxd.config import Config

__all__ = ["check_workers"]


def check_workers(config: Config, count: int, where: str) -> str | None:
    """Why *config* cannot run *count* workers (None: it can); *where* names the setting."""
    if count <= 1:
        return None
    if config.redis is None:
        return (
            f"{where} needs shared state: configure redis: (docs/replicas.rst); without it each"
            " worker would keep its own catalog, _packs index and tag locks"
        )
    if config.storage.driver == "inmemory":
        return f"{where} needs storage every worker sees; inmemory storage is one process's"
    tls = config.http.tls
    if tls is not None and tls.letsencrypt is not None and not config.http.redirect:
        return (
            f"{where} with http.tls.letsencrypt needs http.redirect (port 80): worker 0 answers"
            " the ACME HTTP-01 challenges there, and a TLS-ALPN-01 check could reach another"
            " worker"
        )
    return None
