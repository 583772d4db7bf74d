"""The notebook display: list tables (paging, search, status badges, copyable ids) and dataset
descriptions rendered as Markdown, with nothing from the server ever running as HTML.

Unit tests of ``datasite._display``: no server needed. test_display_browser.py runs the same HTML
in a real browser.
"""

import html.parser

import pytest

from datasite import _display
from datasite.datasets import Dataset, DatasetList

HOSTILE = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=2">',
    "<svg onload=window.__xss=3>",
    '"><script>window.__xss=4</script>',
    "' onmouseover='window.__xss=5",
    "[click](javascript:window.__xss=6)",
    "[click](JaVaScRiPt:window.__xss=7)",
    "[click]( javascript:window.__xss=8)",
    "[click](data:text/html,<script>window.__xss=9</script>)",
    '[click](http://x.org/"onmouseover="window.__xss=10)',
    "<javascript:window.__xss=11>",
    "<https://x.org/\" onclick=\"window.__xss=12>",
    "```\n</code></pre><script>window.__xss=13</script>\n```",
    "`</code><script>window.__xss=14</script>`",
    "**<b onclick=window.__xss=15>x</b>**",
    "<a href='javascript:window.__xss=16'>x</a>",
    "&lt;script&gt;window.__xss=17&lt;/script&gt;",
    "# <iframe src=javascript:window.__xss=18>",
    "- <style>*{display:none}</style>",
    "> <object data=javascript:window.__xss=19>",
]

ALLOWED_TAGS = {
    "div", "h3", "h4", "h5", "h6", "p", "br", "ul", "ol", "li", "pre", "code", "strong", "em",
    "a", "blockquote", "hr", "table", "thead", "tbody", "tr", "th", "td", "span", "input",
    "button", "style", "script",
}  # fmt: skip


class _Elements(html.parser.HTMLParser):
    """Every start tag with its attributes, and the text of every script and style element."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.scripts, self._in = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._in = tag
            self.scripts.append((tag, ""))

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in:
            tag, text = self.scripts[-1]
            self.scripts[-1] = (tag, text + data)


def _elements(text):
    parser = _Elements()
    parser.feed(text)
    parser.close()
    return parser


def _assert_inert(rendered, own_scripts=0):
    """No element from the payload: only allowed tags, no event handler attributes, links to
    http(s) only, and only our own scripts (which hold no payload text).
    """
    found = _elements(rendered)
    for tag, attrs in found.tags:
        assert tag in ALLOWED_TAGS, (tag, rendered)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, rendered)
            if name == "href":
                assert value.startswith(("http://", "https://")), (value, rendered)
                assert '"' not in value and " " not in value
    scripts = [text for tag, text in found.scripts if tag == "script"]
    assert len(scripts) == own_scripts, rendered
    for text in scripts + [text for tag, text in found.scripts if tag == "style"]:
        assert "__xss" not in text


@pytest.mark.parametrize("payload", HOSTILE)
def test_markdown_of_a_hostile_description_is_inert(payload):
    rendered = _display.markdown_html("Intro\n\n" + payload + "\n\nafter **bold**")
    _assert_inert(rendered)
    assert "<strong>bold</strong>" in rendered


@pytest.mark.parametrize("payload", HOSTILE)
def test_a_hostile_list_is_inert(payload):
    rows = [[payload, payload, payload, payload]]
    rendered = _display.html_list(payload, ("name", "status", "id", "summary"), rows)
    _assert_inert(rendered, own_scripts=1)
    # The id is copied from an attribute, quoted; the browser gives back the exact text.
    tags = _elements(rendered).tags
    (button,) = [attrs for tag, attrs in tags if tag == "button" and "data-copy" in attrs]
    assert button["data-copy"] == payload


def test_markdown_renders_the_common_forms():
    rendered = _display.markdown_html(
        "# Title\n\nA *b* **c** `d<e>` [site](https://example.org/a?b=1&c=2) <https://x.org>\n\n"
        "- one\n- two\n\n1. first\n2. second\n\n> quoted\n\n---\n\n```\nx < y\n```"
    )
    assert "<h4>Title</h4>" in rendered
    assert "<em>b</em> <strong>c</strong> <code>d&lt;e&gt;</code>" in rendered
    assert (
        '<a href="https://example.org/a?b=1&amp;c=2" target="_blank" '
        'rel="noopener noreferrer nofollow">site</a>' in rendered
    )
    assert '<a href="https://x.org"' in rendered
    assert "<ul><li>one</li><li>two</li></ul>" in rendered
    assert "<ol><li>first</li><li>second</li></ol>" in rendered
    assert "<blockquote>quoted</blockquote>" in rendered and "<hr>" in rendered
    assert "<pre><code>x &lt; y</code></pre>" in rendered


def test_a_link_to_anything_but_http_stays_text():
    for target in ("javascript:alert(1)", "data:text/html,x", "file:///etc/passwd", "vbscript:x"):
        rendered = _display.markdown_html("[x]({})".format(target))
        assert "<a " not in rendered
        assert "[x](" in rendered


def test_markdown_reveals_hidden_characters():
    rendered = _display.markdown_html("a\u202eb\x1b[31m")
    assert "\\u202e" in rendered and "\\x1b" in rendered


def test_badges_take_their_class_from_a_fixed_table():
    approved = _display.badge("approved")
    assert approved.startswith('<span class="ds-badge ds-badge-ok" style="')
    assert approved.endswith('">approved</span>')
    assert "ds-badge-wait" in _display.badge("pending")
    assert "ds-badge-bad" in _display.badge("denied")
    assert "ds-badge-run" in _display.badge("running")
    hostile = _display.badge('x" onclick="alert(1)')
    assert hostile.startswith('<span class="ds-badge ds-badge-other" style="')
    _assert_inert(hostile)


def test_list_table_has_search_pager_badges_and_copy_buttons():
    rows = [["job-{}".format(i), "completed" if i % 2 else "running"] for i in range(25)]
    rendered = _display.html_list("Jobs", ("id", "status"), rows, page_size=10)
    assert rendered.count('class="ds-copy"') == 25
    assert rendered.count("ds-badge ds-badge-ok") == 12
    assert rendered.count("ds-badge ds-badge-run") == 13
    assert 'class="ds-search"' in rendered and 'class="ds-next"' in rendered
    assert "size=10" in rendered
    # Each table finds its own rows: two renderings never share an element id.
    assert _elements(rendered).tags[0][1]["id"] != _elements(
        _display.html_list("Jobs", ("id", "status"), rows)
    ).tags[0][1]["id"]


def test_dataset_description_is_markdown_in_the_dataset_display():
    dataset = Dataset._from_server(
        {
            "id": "d1",
            "name": "<img src=x onerror=alert(1)>",
            "summary": "s",
            "description": "## Columns\n\n* **age**: years <script>alert(2)</script>",
            "assets": [],
        },
        None,
    )
    rendered = dataset._repr_html_()
    assert "<h5>Columns</h5>" in rendered
    assert "<li><strong>age</strong>: years &lt;script&gt;" in rendered
    _assert_inert(rendered, own_scripts=rendered.count("<script>"))
    assert "<img" not in rendered and "<script>alert" not in rendered
    listing = DatasetList([dataset])._repr_html_()
    _assert_inert(listing, own_scripts=1)
