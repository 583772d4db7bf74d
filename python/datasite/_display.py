"""Text, HTML and Markdown rendering for notebooks and terminals.

Everything that comes from the server is escaped before it goes into HTML or Markdown: a user name
such as ``<script>`` must show up as text, never run in the reader's notebook.
"""

import html
import io
import re
import tokenize
import unicodedata

_MD_SPECIALS = "\\`*_{}[]()#+!|~"


def show(value):
    """Plain-text form of a value for tables: None as empty, booleans as True/False, hidden
    characters revealed (see ``reveal``).
    """
    if value is None:
        return ""
    return reveal(str(value))


# Characters that change what a reader sees without being seen: C0 and C1 controls (ANSI escapes,
# carriage returns), zero-width characters, bidi overrides and isolates ("Trojan Source"), the BOM,
# the soft hyphen, Hangul fillers (letters Python accepts in names), variation selectors, tags and
# the line and paragraph separators.
_HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff"
    "\uffa0\ufff0-\ufffb\U000e0000-\U000e0fff]"
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


def _escape(ch):
    return "\\u{:04x}".format(ord(ch)) if ord(ch) <= 0xFFFF else "\\U{:08x}".format(ord(ch))


def reveal_code(source):
    """Python ``source`` for review: ``reveal``, and every character of a name that Python reads as
    another (it compares names after NFKC normalization: ``𝗆𝖾𝖺𝗇`` is ``mean``) written as an escape.
    """
    source = "" if source is None else str(source)
    folded = [i for i, ch in enumerate(source) if unicodedata.normalize("NFKC", ch) != ch]
    if folded:
        spans = _name_spans(source)
        marks = set(i for i in folded if spans is None or any(a <= i < b for a, b in spans))
        source = "".join(_escape(ch) if i in marks else ch for i, ch in enumerate(source))
    return reveal(source)


def _name_spans(source):
    """Character spans of the names and operators in ``source`` (not comments or strings); None
    when it does not tokenize (then every folded character is escaped).
    """
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                continue
            if tok.type == tokenize.STRING and not _is_f_string(tok.string):
                continue
            (r0, c0), (r1, c1) = tok.start, tok.end
            spans.append((starts[r0 - 1] + c0, starts[r1 - 1] + c1))
    except (tokenize.TokenError, SyntaxError, IndexError):
        return None
    return spans


def _is_f_string(text):
    quote = min(i for i in (text.find("'"), text.find('"')) if i >= 0)
    return "f" in text[:quote].lower()


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
