"""``GET /packs/<name>[?tag=T]``: one pack, one of its versions in full, all its tags.

The pack and its tags come from the ``_packs`` index; the version shown
(the newest, or ``?tag=``) has its documents read by
:class:`~paxd.web.catalogue.documents.DocumentReader`.  The ``paxctl pack
pull`` commands name the registry as the browser reached it (or as
``http.host`` says).
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
from twisted.web.iweb import IRequest
from twisted.web.template import Element, Flattenable, Tag, renderer, tags

from paxd.packs.format import PREFIX
from paxd.web.catalogue.documents import Document, VersionDocuments
from paxd.web.catalogue.layout import badges, chips, logo, size_text, template, when
from paxd.web.catalogue.paths import blob_url, pack_url
from paxd.web.catalogue.view import PackView, TagView

#: manifest annotations worth a line of the facts (the rest are in the index already)
_FACTS = (
    (PREFIX + "addonSubType", "Add-on subtype"),
    (PREFIX + "eol", "End of life"),
    (PREFIX + "message", "Push message"),
)


def pull_commands(server: str, name: str, tag: str, digest: str) -> tuple[str, str]:
    """``paxctl pack pull`` by tag and by digest, into a directory named after the pack."""
    directory = "./" + name.rsplit("/", 1)[-1]
    base = f"paxctl pack pull -r {server}"
    return f"{base} {name}:{tag} {directory}", f"{base} {name}@{digest} {directory}"


@attrs.frozen
class PackModel:
    """What one pack's page shows."""

    pack: PackView
    shown: TagView
    documents: VersionDocuments
    #: the registry as ``paxctl -r`` takes it (``https://host:port``)
    server: str


class PackContent(Element):
    """The pack page's content."""

    loader = template("pack.xml")

    def __init__(self, model: PackModel) -> None:
        super().__init__()
        self.model = model

    @renderer
    def main(self, request: IRequest | None, tag: Tag) -> Tag:
        model = self.model
        pack, shown = model.pack, model.shown
        by_tag, by_digest = pull_commands(model.server, pack.name, shown.tag, shown.digest)
        display_name = shown.display_name or pack.name
        newest = shown.digest == pack.newest.digest
        return tag.fillSlots(
            name=pack.name,
            display_name=display_name,
            tag=shown.tag,
            newest_note=tags.span("newest", class_="badge newest")
            if newest
            else tags.a(f"newest is {pack.newest.tag}", href=pack_url(pack.name), class_="badge"),
            logo=logo(pack.name, display_name, shown.logo, shown.logo_type, 72),
            badges=badges(shown.layer, shown.addon_type),
            clouds=chips(shown.cloud_types),
            pull_tag=by_tag,
            pull_digest=by_digest,
            version_count=str(pack.version_count),
            readme=self.readme(),
        )

    def readme(self) -> Tag:
        """The rendered README, or why there is none."""
        documents = self.model.documents
        if documents.readme is not None:
            return documents.readme
        document = documents.readme_document
        if document is None:
            return tags.p("This version has no README.", class_="muted")
        return tags.p(f"README.md is {document.problem}.", self._download(document))

    def _download(self, document: Document) -> Tag | str:
        url = blob_url(self.model.pack.name, document.digest, "text/plain")
        return tags.a(" Download it", href=url) if url else ""

    @renderer
    def facts(self, request: IRequest | None, tag: Tag) -> Tag:
        return tag

    @renderer
    def fact(self, request: IRequest | None, tag: Tag) -> Iterator[Tag]:
        shown = self.model.shown
        rows: list[tuple[str, Flattenable]] = [
            ("Version", shown.version),
            ("Manifest digest", tags.code(shown.digest, id="manifest-digest")),
            ("Pushed", when(self.model.documents.moved.get(shown.tag))),
        ]
        annotations = self.model.documents.annotations
        rows += [(label, annotations[key]) for key, label in _FACTS if annotations.get(key)]
        if shown.parents:
            rows.append(("Parent tags", chips(shown.parents, "chip parent")))
        for term, value in rows:
            yield tag.clone().fillSlots(fact_term=term, fact_value=value)

    @renderer
    def version_row(self, request: IRequest | None, tag: Tag) -> Iterator[Tag]:
        pack, shown = self.model.pack, self.model.shown
        moved = self.model.documents.moved
        for view in pack.tags:
            yield tag.clone().fillSlots(
                row_class="current" if view.tag == shown.tag else "",
                row_url=pack_url(pack.name, view.tag),
                row_tag=view.tag,
                row_version=view.version,
                row_group=view.group or "—",
                row_parents=chips(view.parents, "chip parent") or "—",
                row_pushed=when(moved.get(view.tag)),
                row_digest=view.digest,
                row_short_digest=view.digest.split(":", 1)[-1][:12],
            )

    @renderer
    def documents(self, request: IRequest | None, tag: Tag) -> Tag | str:
        return tag if self.model.documents.documents else ""

    @renderer
    def document(self, request: IRequest | None, tag: Tag) -> Iterator[Tag]:
        for document in self.model.documents.documents:
            if document.text is not None:
                body: Tag = tags.pre(tags.code(document.text))
            else:
                body = tags.p(f"{document.title} is {document.problem}.", self._download(document))
            element = tag.clone()
            if document.title == "values.yaml":
                element(open="open")  # what a user of the pack sets first
            yield element.fillSlots(
                doc_id="doc-" + document.title.replace(".", "-"),
                doc_title=document.title,
                doc_size=size_text(document.size),
                doc_body=body,
            )


__all__ = ["PackContent", "PackModel", "pull_commands"]
