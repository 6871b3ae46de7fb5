"""The entry points: a file, the built-in default or a text → :class:`~paxd.config.model.Config`.

The file is read as distribution 2.8 reads it (``configuration/parser.go``):
``version: 0.1`` is checked first, then every ``REGISTRY_*`` variable replaces
the value at its path (:mod:`paxd.config.environ`), then the tree is decoded
into the model (:mod:`paxd.config.decode`). *environ* is never ``os.environ``
implicitly: the caller passes it.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from paxd.config.context import Context
from paxd.config.decode import decode, decode_field
from paxd.config.environ import apply_environment, name_drivers
from paxd.config.errors import ConfigError
from paxd.config.model import Config
from paxd.config.schema import fields_of
from paxd.config.yamlload import describe, load_yaml

__all__ = [
    "DEFAULT_CONFIG_TEXT",
    "DEFAULT_SOURCE",
    "load_config",
    "load_default_config",
    "parse_config",
]

#: The source name used for :data:`DEFAULT_CONFIG_TEXT` in messages.
DEFAULT_SOURCE = "<paxd built-in default configuration>"

#: The vendor image's default configuration (``/etc/spectro/config.yml``): what
#: ``paxd serve`` runs with ``REGISTRY_*`` variables alone, like ``docker run -e``.
DEFAULT_CONFIG_TEXT = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /data/.spectro-server
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
    Strict-Transport-Security: [max-age=63072000; includeSubdomains; preload]
    Content-Security-Policy: ["img-src 'self'; script-src 'self'; style-src 'self'"]
    X-Frame-Options: [DENY]
    X-XSS-Protection: [1; mode=block]
    Referrer-Policy: [same-origin]
auth:
  htpasswd:
    realm: basic-realm
    path: /auth/htpasswd-basic
"""


def load_config(path: str, environ: Mapping[str, str] | None = None) -> Config:
    """Read the configuration file *path* and apply the ``REGISTRY_*`` variables of *environ*.

    *environ* is never ``os.environ`` implicitly: the caller passes it (``None`` = no overrides).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(
            path,
            "",
            "no such file; pass the configuration file to use (etc/paxd/quickstart.yml is a"
            " minimal one)",
        ) from None
    except IsADirectoryError:
        raise ConfigError(path, "", "is a directory; pass the configuration file itself") from None
    except OSError as e:
        raise ConfigError(path, "", f"cannot read the file: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            path, "", f"not UTF-8 text (byte {e.start}); save the file as UTF-8"
        ) from None
    return parse_config(text, path, environ)


def load_default_config(environ: Mapping[str, str] | None = None) -> Config:
    """The vendor image's default configuration with the ``REGISTRY_*`` overrides of *environ*."""
    return parse_config(DEFAULT_CONFIG_TEXT, DEFAULT_SOURCE, environ)


def parse_config(text: str, source: str, environ: Mapping[str, str] | None = None) -> Config:
    """Parse configuration *text*; *source* names it in messages."""
    tree = load_yaml(text, source, "")
    if tree is None:
        raise ConfigError(source, "", "the file is empty; it must start with 'version: 0.1'")
    if not isinstance(tree, dict):
        raise ConfigError(
            source,
            "",
            f"the file holds {describe(tree)}, not a mapping of sections; it must start with"
            " 'version: 0.1'",
        )
    ctx = Context(source)
    # Distribution checks the version before anything else, overrides included.
    (version,) = (f for f in fields_of(Config) if f.key == "version")
    decode_field(ctx, version, tree, "")
    name_drivers(tree, Config)
    apply_environment(tree, environ or {}, ctx, Config)
    config: Config = decode(ctx, Config, tree, "")
    return attrs.evolve(config, warnings=tuple(ctx.warnings), source=source)
