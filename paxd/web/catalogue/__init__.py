"""The pack catalogue in a browser: HTML pages over the ``_packs`` index, at the registry's address.

``GET /`` from a browser (``Accept: text/html``) lists every pack; API
clients keep the answer they had.  The layout::

    paths.py        which requests are the catalogue's; the URLs its pages link to
    view.py         packs and tags as the pages see them (from ``_packs``); filters, pages
    resources.py    Catalogue (shared), the resource tree of one client, the pages
    listpage.py     /                     the packs, filtered and paged
    packpage.py     /packs/<name>         one pack: a version in full, all its tags
    repospage.py    /repositories         repositories holding no pack, with their tags
    documents.py    one version's README, values, schema, presets, pack.json (bounded)
    markdown.py     a README as escaped tags (markdown-it-py, no raw HTML)
    layout.py       the frame every page shares; small fragments
    static.py       /static/<file> from the package, in memory
    templates/      twisted.web.template XML
    static/         the stylesheet, the script, the icon

The pages sit behind the API's guard (same users, same anonymous reads) and
keep to the default Content-Security-Policy: no inline script or style.
``packs.catalogue: false`` turns them off.
"""
