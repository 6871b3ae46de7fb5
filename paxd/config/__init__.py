"""paxd's configuration: Docker distribution's YAML format and ``REGISTRY_*`` overrides.

The result is a tree of frozen attrs objects (:class:`Config`). An operator's
mistake never produces a traceback: everything that stops the daemon is a
:class:`ConfigError` whose message is one line naming the file, the key path,
what is wrong and how to fix it. Keys paxd does not implement are accepted and
reported once each in :attr:`Config.warnings`; unknown keys are warnings too,
except in the sections marked strict (``http``, ``http.tls``, ``auth.htpasswd``,
storage drivers' sections) and at a top level whose indentation was lost, where
they are errors. Nothing here logs (the daemon logs the warnings).

The package, in the order a file goes through it:

- :mod:`~paxd.config.load`: the entry points re-exported here;
- :mod:`~paxd.config.yamlload`: YAML keeping each scalar's text, refusing duplicate keys;
- :mod:`~paxd.config.environ`: the ``REGISTRY_*`` overlay, walking the model;
- :mod:`~paxd.config.decode`: the raw tree → the model's objects, driven by the model;
- :mod:`~paxd.config.model`: the attrs classes, the one schema (keys, kinds, defaults,
  converters, what paxd does not implement), written with :mod:`~paxd.config.schema`;
- :mod:`~paxd.config.values`: converters and checks for single fields
  (:mod:`~paxd.config.duration` parses Go durations);
- :mod:`~paxd.config.rules`: cross-field rules; :mod:`~paxd.config.files`: file checks;
- :mod:`~paxd.config.context` and :mod:`~paxd.config.errors`: warnings and the one error type;
- :mod:`~paxd.config.dump`: a decoded configuration as YAML again (``paxd check-config``).

Listener addresses become Twisted endpoint descriptions in :mod:`paxd.listeners`.
"""

from paxd.config.environ import ENV_PREFIX
from paxd.config.errors import ConfigError
from paxd.config.load import (
    DEFAULT_CONFIG_TEXT,
    DEFAULT_SOURCE,
    load_config,
    load_default_config,
    parse_config,
)
from paxd.config.model import (
    DEFAULT_LETSENCRYPT_DIRECTORY,
    DEFAULT_ROOTDIRECTORY,
    LOG_FORMATTERS,
    LOG_LEVELS,
    TLS_VERSIONS,
    AuthConfig,
    CatalogConfig,
    Config,
    HealthConfig,
    HtpasswdConfig,
    HTTPConfig,
    LetsEncryptConfig,
    LogConfig,
    PacksConfig,
    StorageConfig,
    TLSConfig,
)

__all__ = [
    "DEFAULT_CONFIG_TEXT",
    "DEFAULT_LETSENCRYPT_DIRECTORY",
    "DEFAULT_ROOTDIRECTORY",
    "DEFAULT_SOURCE",
    "ENV_PREFIX",
    "LOG_FORMATTERS",
    "LOG_LEVELS",
    "TLS_VERSIONS",
    "AuthConfig",
    "CatalogConfig",
    "Config",
    "ConfigError",
    "HTTPConfig",
    "HealthConfig",
    "HtpasswdConfig",
    "LetsEncryptConfig",
    "LogConfig",
    "PacksConfig",
    "StorageConfig",
    "TLSConfig",
    "load_config",
    "load_default_config",
    "parse_config",
]
