"""A README as safe HTML: :mod:`paxd.web.catalogue.markdown`, flattened as a page would be."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.template import flattenString

from paxd.web.catalogue.markdown import plain, render_markdown, safe_href


def html(markdown: str) -> str:
    """*markdown* rendered and flattened."""
    out: list[bytes] = []
    flattenString(None, render_markdown(markdown)).addCallback(out.append)
    return out[0].decode("utf-8")


class SafeHrefTests(SynchronousTestCase):
    def test_allowed(self) -> None:
        for url in (
            "https://example.com/a?b=c#d",
            "http://example.com",
            "mailto:team@example.com",
            "#install",
        ):
            self.assertEqual(safe_href(url), url)

    def test_refused(self) -> None:
        for url in (
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "vbscript:x",
            "data:text/html,<script>",
            "file:///etc/passwd",
            "//evil.example/x",  # scheme-relative: not a relative path into the pack
            "docs/install.md",
            "/v2/_catalog",
            "https:///no-host",
            "https://x\x00.example",
            "https://example.com/" + "a" * 3000,
        ):
            self.assertIsNone(safe_href(url), url)


class RenderTests(SynchronousTestCase):
    def test_commonmark_and_tables(self) -> None:
        out = html(
            "# Title\n\nSome *em*, **strong**, `code` and ~~gone~~.\n\n"
            "1. one\n2. two\n\n- a\n- b\n\n> quoted\n\n---\n\n"
            "| l | r |\n|:--|--:|\n| 1 | 2 |\n\n    indented\n"
        )
        self.assertEqual(
            out,
            '<div class="markdown"><h2>Title</h2><p>Some <em>em</em>, <strong>strong</strong>,'
            " <code>code</code> and <s>gone</s>.</p><ol><li>one</li><li>two</li></ol>"
            "<ul><li>a</li><li>b</li></ul><blockquote><p>quoted</p></blockquote><hr />"
            '<table><thead><tr><th class="align-left">l</th><th class="align-right">r</th>'
            '</tr></thead><tbody><tr><td class="align-left">1</td><td class="align-right">2'
            "</td></tr></tbody></table><pre><code>indented\n</code></pre></div>",
        )

    def test_headings_move_down_to_h6(self) -> None:
        out = html("# a\n\n###### f\n")
        self.assertIn("<h2>a</h2>", out)
        self.assertIn("<h6>f</h6>", out)

    def test_ordered_list_start_and_fence_language(self) -> None:
        out = html('3. three\n4. four\n\n```yaml" onclick="x\na: 1\n```\n\n```py\nx\n```\n')
        self.assertIn('<ol start="3">', out)
        # an info string that is not a plain language name adds no class at all
        self.assertIn("<pre><code>a: 1\n</code></pre>", out)
        self.assertIn('<code class="language-py">x\n</code>', out)

    def test_raw_html_is_text(self) -> None:
        out = html('<script>alert(1)</script>\n\nx <img src=x onerror="alert(1)"> y\n')
        self.assertNotIn("<script", out)
        self.assertNotIn("<img", out)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", out)
        self.assertIn('&lt;img src=x onerror="alert(1)"&gt;', out)

    def test_links(self) -> None:
        out = html(
            '[docs](https://example.com/docs "The docs") [bad](javascript:alert(1))'
            " [rel](docs/x.md) <https://auto.example> [top](#top)"
        )
        self.assertIn(
            '<a href="https://example.com/docs" rel="nofollow noopener noreferrer"'
            ' title="The docs">docs</a>',
            out,
        )
        self.assertIn("[bad](javascript:alert(1))", out)  # markdown-it refuses it: text
        self.assertIn('<span class="md-link-dropped">rel</span>', out)
        self.assertIn('<a href="https://auto.example" rel="nofollow noopener noreferrer">', out)
        self.assertIn('<a href="#top">top</a>', out)

    def test_images_become_links(self) -> None:
        out = html("![diagram](https://example.com/d.png) ![x](javascript:alert(1)) ![y](y.png)")
        self.assertIn(
            '<a href="https://example.com/d.png" rel="nofollow noopener noreferrer"'
            ' class="md-image">Image: diagram</a>',
            out,
        )
        self.assertNotIn("<img", out)
        self.assertIn('<span class="md-image">y</span>', out)

    def test_entities_cannot_smuggle_a_scheme(self) -> None:
        out = html("[a](&#106;avascript:alert(1)) [b](java&#x09;script:alert(1))")
        self.assertNotIn("href", out)

    def test_plain(self) -> None:
        self.assertEqual(plain(render_markdown("# A\n\nb *c*")), "Ab c")
