"""One pack version's documents for its page: README, values, schema, presets, pack.json.

The pack page reads, for the version shown, its manifest and the small
documents that travel as blobs of their own (``docs/pack-format.rst``), each
no larger than :data:`MAX_DOCUMENT`, and when each tag last moved (a stat per
tag, at most :data:`MAX_DATES`).  Nothing else of storage is read; the list
page reads none of it.

The README's Markdown is rendered in a thread of the runner given (it is
pure Python, and a large README would hold the reactor for a while) and kept
by digest, since a blob never changes.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import attrs
from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import Logger
from twisted.web.template import Tag

from paxd.packs.format import DOCUMENT_MEDIA_TYPES, TITLE
from paxd.registry.errors import RegistryError
from paxd.registry.repository import Repository
from paxd.threadpool import IRunner
from paxd.web.catalogue.markdown import render_markdown

log = Logger()

#: the largest document shown on a page (larger ones are offered as a download)
MAX_DOCUMENT = 256 * 1024
#: the most tags whose push dates one page looks up
MAX_DATES = 200
#: rendered READMEs kept, by blob digest
README_CACHE = 32
#: the documents shown, in the page's order (pack.json is the manifest's config)
SHOWN = ("values.yaml", "schema.yaml", "presets.yaml", "pack.json")
README = "README.md"
PACK_JSON = "pack.json"


@attrs.frozen
class Document:
    """One document of a pack version.

    :ivar text: its content, or None when it is too large (or missing).
    :ivar problem: why it is not shown, if it is not.
    """

    title: str
    digest: str
    size: int
    text: str | None
    problem: str | None = None


@attrs.frozen
class VersionDocuments:
    """What one version's page shows beyond the index: its manifest's documents and dates."""

    #: the manifest's annotations (strings only)
    annotations: dict[str, str]
    readme: Tag | None
    #: README.md as a document (for its size, digest and any problem)
    readme_document: Document | None
    documents: list[Document]
    #: tag → when it last moved (seconds since the epoch), for the tags looked up
    moved: dict[str, float | None]


def _layers(manifest: Any) -> dict[str, tuple[str, int]]:
    """Title → (digest, size) of the manifest's titled document layers and its config."""
    found: dict[str, tuple[str, int]] = {}
    if not isinstance(manifest, dict):
        return found
    config = manifest.get("config")
    if isinstance(config, dict) and isinstance(config.get("digest"), str):
        found[PACK_JSON] = (config["digest"], int(config.get("size") or 0))
    layers = manifest.get("layers")
    for layer in layers if isinstance(layers, list) else []:
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
            continue
        annotations = layer.get("annotations")
        title = annotations.get(TITLE) if isinstance(annotations, dict) else None
        if title in DOCUMENT_MEDIA_TYPES and title not in found:
            size = layer.get("size")
            found[title] = (layer["digest"], size if isinstance(size, int) else 0)
    return found


def _pretty(title: str, text: str) -> str:
    """pack.json indented for reading (as stored if it is not JSON); others as they are."""
    if title != PACK_JSON:
        return text
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


class DocumentReader:
    """Reads the documents of pack versions; see the module docstring.

    :param runner: where the README's Markdown is rendered (off the reactor thread).
    """

    def __init__(self, runner: IRunner) -> None:
        self.runner = runner
        self._readmes: OrderedDict[str, Tag] = OrderedDict()

    async def read(self, repository: Repository, digest: str, tags: list[str]) -> VersionDocuments:
        """The documents of the manifest *digest* of *repository*, and when *tags* moved.

        :raises RegistryError: MANIFEST_UNKNOWN if the manifest is gone.
        """
        info = await repository.manifests.get(digest)
        try:
            manifest = json.loads(info.content)
        except ValueError:
            manifest = {}
        layers = _layers(manifest)
        wanted = [t for t in (README, *SHOWN) if t in layers]
        results = await gatherResults(
            [Deferred.fromCoroutine(self._document(repository, t, *layers[t])) for t in wanted],
            consumeErrors=True,
        )
        by_title = dict(zip(wanted, results, strict=True))
        moved = await repository.tags.moved_at(tags[:MAX_DATES])
        readme_document = by_title.pop(README, None)
        readme = None
        if readme_document is not None and readme_document.text is not None:
            readme = await self._readme(readme_document)
        raw = manifest.get("annotations") if isinstance(manifest, dict) else None
        annotations = (
            {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}
            if isinstance(raw, dict)
            else {}
        )
        shown = [by_title[t] for t in SHOWN if t in by_title]
        return VersionDocuments(annotations, readme, readme_document, shown, moved)

    async def _document(
        self, repository: Repository, title: str, digest: str, size: int
    ) -> Document:
        """One document, read whole if it is small enough; never fails."""
        if size > MAX_DOCUMENT:
            return Document(title, digest, size, None, "too large to show here")
        try:
            opened = await repository.blobs.open(digest)
        except RegistryError as e:
            log.warn(
                "{name}: {title} ({digest}) cannot be read: {error}",
                name=repository.name,
                title=title,
                digest=digest,
                error=e.message,
            )
            return Document(title, digest, size, None, "missing from storage")
        reader = opened.reader
        try:
            if reader.size > MAX_DOCUMENT:
                return Document(title, digest, reader.size, None, "too large to show here")
            parts: list[bytes] = []
            while chunk := await reader.read(64 * 1024):
                parts.append(chunk)
                if sum(map(len, parts)) > MAX_DOCUMENT:
                    return Document(title, digest, reader.size, None, "too large to show here")
        finally:
            await reader.close()
        data = b"".join(parts)
        return Document(title, digest, len(data), _pretty(title, data.decode("utf-8", "replace")))

    async def _readme(self, document: Document) -> Tag:
        """The README rendered (from the cache when this blob was rendered before)."""
        cached = self._readmes.get(document.digest)
        if cached is not None:
            self._readmes.move_to_end(document.digest)
            return cached
        assert document.text is not None
        rendered = await self.runner.run(render_markdown, document.text)
        self._readmes[document.digest] = rendered
        while len(self._readmes) > README_CACHE:
            self._readmes.popitem(last=False)
        return rendered


__all__ = ["MAX_DATES", "MAX_DOCUMENT", "Document", "DocumentReader", "VersionDocuments"]
