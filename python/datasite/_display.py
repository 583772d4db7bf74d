"""Text, HTML and Markdown rendering for notebooks and terminals.

Everything that comes from the server is escaped before it goes into HTML or Markdown: a user name
such as ``<script>`` must show up as text, never run in the reader's notebook.
"""

import html
import re

_MD_SPECIALS = "\\`*_{}[]()#+!|~"


def show(value):
    """Plain-text form of a value for tables: None as empty, booleans as True/False, hidden
    characters revealed (see ``reveal``).
    """
    if value is None:
        return ""
    return reveal(str(value))


# Characters that change what a reader sees without being seen: C0 and C1 controls (ANSI escapes,
# carriage returns), zero-width characters, bidi overrides and isolates ("Trojan Source"), the BOM.
_HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)


def reveal(text):
    """``text`` with every hidden or direction-changing character written as a visible escape
    (``\\x1b``, ``\\u202e``), tabs and newlines kept: what a reviewer reads is what runs.
    """
    return _HIDDEN.sub(
        lambda m: "\\u{:04x}".format(ord(m.group(0)))
        if ord(m.group(0)) > 0xFF
        else "\\x{:02x}".format(ord(m.group(0))),
        "" if text is None else str(text),
    )


def has_hidden(text):
    """True when ``text`` holds characters ``reveal`` would escape."""
    return bool(_HIDDEN.search("" if text is None else str(text)))


def esc(value):
    """HTML-escaped text of a value (quotes too)."""
    return html.escape(show(value), quote=True)


def md_esc(value):
    """Markdown-safe text of a single-line value (HTML escaped, punctuation backslashed)."""
    text = html.escape(show(value), quote=False)
    return "".join("\\" + ch if ch in _MD_SPECIALS else ch for ch in text)


_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)


def _escape_outside_code_spans(line):
    out, pos = [], 0
    for match in _CODE_SPAN.finditer(line):
        start = match.start()
        out.append(html.escape(line[pos:start], quote=False))
        out.append(match.group(0))  # Code spans show `<` literally: nothing to neutralise.
        pos = match.end()
    out.append(html.escape(line[pos:], quote=False))
    return "".join(out)


def md_esc_block(text):
    """A Markdown document from the server, kept as Markdown but with any raw HTML neutralised.

    Outside code, ``<``, ``>`` and ``&`` become entities, so no tag reaches the notebook; inside
    code spans and fenced blocks they are left alone, because Markdown already shows them literally
    there.
    """
    lines, fence = [], None
    for line in show(text).split("\n"):
        match = _FENCE.match(line)
        if fence is not None:
            lines.append(line)
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
        elif match:
            fence = match.group(1)
            lines.append(line)
        else:
            lines.append(_escape_outside_code_spans(line))
    return "\n".join(lines)


def text_fields(title, rows):
    """``Title`` then one ``Label: value`` line per row, labels aligned."""
    width = max((len(label) for label, _ in rows), default=0) + 1
    lines = [title, ""]
    for label, value in rows:
        lines.append("  {:<{w}} {}".format(label + ":", show(value), w=width))
    return "\n".join(lines)


def text_table(columns, rows):
    """A plain-text table with a header row."""
    cells = [[show(c) for c in columns]] + [[show(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(v.ljust(widths[i]) for i, v in enumerate(row)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def html_fields(title, rows):
    """An HTML block with a title and a two-column table of label/value rows."""
    body = "".join(
        '<tr><th style="text-align:left">{}</th><td style="text-align:left">{}</td></tr>'.format(
            esc(label), esc(value)
        )
        for label, value in rows
    )
    return '<div class="datasite"><h3>{}</h3><table>{}</table></div>'.format(esc(title), body)


def html_table(title, columns, rows):
    """An HTML block with a title, a header row and one row per item."""
    head = "".join('<th style="text-align:left">{}</th>'.format(esc(c)) for c in columns)
    body = "".join(
        "<tr>{}</tr>".format(
            "".join('<td style="text-align:left">{}</td>'.format(esc(v)) for v in row)
        )
        for row in rows
    )
    return (
        '<div class="datasite"><h3>{}</h3><table><thead><tr>{}</tr></thead>'
        "<tbody>{}</tbody></table></div>".format(esc(title), head, body)
    )


def md_fields(title, rows):
    """A Markdown block with a heading and one bold-labelled line per row."""
    lines = ["### " + md_esc(title), ""]
    for label, value in rows:
        lines.append("**{}:** {}  ".format(md_esc(label), md_esc(value)))
    return "\n".join(lines) + "\n"
