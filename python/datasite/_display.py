"""Text, HTML and Markdown rendering for notebooks and terminals.

Everything that comes from the server is escaped before it goes into HTML or Markdown: a user name
such as ``<script>`` must show up as text, never run in the reader's notebook.
"""

import html
import io
import re
import secrets
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


def person(user):
    """A user as "Name <email>" (either alone when the other is missing); anything but a dict of
    theirs is shown as it is."""
    if not isinstance(user, dict):
        return show(user)
    name, email = user.get("name"), user.get("email")
    if name and email:
        return "{} <{}>".format(name, email)
    return show(name or email)


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
# A code span as CommonMark reads one: a run of backticks not escaped by a backslash, closed by a
# run of the same length (a longer or shorter run closes nothing). Anything this does not take for
# code is escaped, so a misreading can only show an entity, never pass a tag.
_CODE_SPAN = re.compile(r"(?<![\\`])(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)


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
    def cell(label, value):
        return badge(value) if label == "Status" and value not in (None, "") else esc(value)

    body = "".join(
        '<tr><th style="text-align:left">{}</th><td style="text-align:left">{}</td></tr>'.format(
            esc(label), cell(label, value)
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


# Status badges -----------------------------------------------------------------------------------

# The CSS class of a status comes from this table alone, never from the server's text.
_BADGE_KINDS = {
    "pending": "wait",
    "queued": "wait",
    "running": "run",
    "processing": "run",
    "approved": "ok",
    "completed": "ok",
    "released": "ok",
    "denied": "bad",
    "rejected": "bad",
    "errored": "bad",
    "timed_out": "bad",
    "killed": "bad",
    "interrupted": "bad",
    "held": "wait",
    "active": "ok",
    "revoked": "bad",
    "expired": "bad",
}


_BADGE_COLOURS = {  # background, text, border
    "wait": ("#fff4d6", "#7a5a00", "#e8c767"),
    "run": ("#e1efff", "#0b4f9c", "#8bb8ea"),
    "ok": ("#e3f6e6", "#1d6b2c", "#8ccf99"),
    "bad": ("#fde7e7", "#9b1c1c", "#eda1a1"),
    "other": ("#f0f0f0", "#444", "#ccc"),
}


def badge(status):
    """An HTML status badge (pending, approved, denied, running, ...), coloured by kind; styled
    inline, so it looks the same in a table or alone.
    """
    text = show(status)
    kind = _BADGE_KINDS.get(text.strip().lower().replace(" ", "_"), "other")
    background, colour, border = _BADGE_COLOURS[kind]
    return (
        '<span class="ds-badge ds-badge-{}" style="border-radius:8px;padding:1px 7px;'
        'font-size:85%;white-space:nowrap;border:1px solid {};background:{};color:{}">{}</span>'
    ).format(kind, border, background, colour, esc(text))


# Interactive tables ------------------------------------------------------------------------------

PAGE_SIZE = 10

_LIST_STYLE = (
    ".ds-list .ds-tools{margin:4px 0;display:flex;gap:8px;align-items:center}"
    ".ds-list .ds-search{padding:2px 6px;min-width:16em}"
    ".ds-list .ds-count,.ds-list .ds-page{color:#666;font-size:90%}"
    ".ds-list td,.ds-list th{text-align:left;vertical-align:top}"
    ".ds-list .ds-pager button,.ds-list .ds-copy{cursor:pointer}"
    ".ds-list .ds-copy{border:1px solid #bbb;border-radius:3px;background:none;font-size:80%;"
    "margin-left:4px;padding:0 4px}"
    ".ds-list code{font-size:90%}"
)

# Paging, search and copy buttons. It reads nothing but the table it belongs to (found by its
# element id) and puts text into the page only through textContent: no server string is ever
# parsed as HTML or run.
_LIST_SCRIPT = """(function(){
var root=document.getElementById("%(id)s");if(!root)return;
var size=%(size)d,page=0,rows=Array.prototype.slice.call(root.querySelectorAll("tbody tr"));
var search=root.querySelector(".ds-search"),count=root.querySelector(".ds-count");
var label=root.querySelector(".ds-page"),prev=root.querySelector(".ds-prev"),
next=root.querySelector(".ds-next");
var keys=rows.map(function(r){var t="";r.querySelectorAll("td").forEach(function(c){
c.childNodes.forEach(function(n){if(n.nodeName!=="BUTTON")t+=n.textContent+" ";});});
return t.toLowerCase();});
function matching(){var q=search.value.trim().toLowerCase();return rows.filter(function(r,i){
return !q||keys[i].indexOf(q)>=0;});}
function draw(){var shown=matching(),pages=Math.max(1,Math.ceil(shown.length/size));
if(page>=pages)page=pages-1;if(page<0)page=0;
rows.forEach(function(r){r.style.display="none";});
shown.slice(page*size,(page+1)*size).forEach(function(r){r.style.display="";});
count.textContent=shown.length+" of "+rows.length;
label.textContent="page "+(page+1)+" of "+pages;
prev.disabled=page===0;next.disabled=page>=pages-1;}
search.addEventListener("input",function(){page=0;draw();});
prev.addEventListener("click",function(){page-=1;draw();});
next.addEventListener("click",function(){page+=1;draw();});
root.querySelectorAll(".ds-copy").forEach(function(b){b.addEventListener("click",function(){
var text=b.getAttribute("data-copy");function done(){b.textContent="copied";
setTimeout(function(){b.textContent="copy";},1500);}
function fallback(){var t=document.createElement("textarea");t.value=text;
document.body.appendChild(t);t.select();try{document.execCommand("copy");}catch(e){}
document.body.removeChild(t);done();}
if(navigator.clipboard&&navigator.clipboard.writeText){
navigator.clipboard.writeText(text).then(done,fallback);}else{fallback();}});});
draw();})();"""


def _is_id_column(name):
    name = str(name).lower()
    return name == "id" or name.endswith("_id") or name.endswith(" id")


def _list_cell(column, value):
    if str(column).lower() == "status" and value not in (None, ""):
        return badge(value)
    if _is_id_column(column) and value not in (None, ""):
        return '<code>{}</code><button type="button" class="ds-copy" data-copy="{}" ' \
            'title="Copy">copy</button>'.format(esc(value), esc(value))
    return esc(value)


def html_list(title, columns, rows, page_size=PAGE_SIZE):
    """A list as a self-contained HTML table: a search box, pages of ``page_size`` rows, status
    badges in a ``status`` column and a copy button by every id. Every value is HTML-escaped; the
    inline script (no network) only shows, hides and copies what is already there.
    """
    # Random, so that a table rendered after a kernel restart does not find an older one's rows.
    table_id = "datasite-list-" + secrets.token_hex(8)
    head = "".join("<th>{}</th>".format(esc(c)) for c in columns)
    body = "".join(
        "<tr>{}</tr>".format(
            "".join("<td>{}</td>".format(_list_cell(c, v)) for c, v in zip(columns, row))
        )
        for row in rows
    )
    return (
        '<div class="datasite ds-list" id="{id}"><style>{style}</style><h3>{title}</h3>'
        '<div class="ds-tools"><input type="search" class="ds-search" placeholder="Search" '
        'aria-label="Search {title}"><span class="ds-count">{n} of {n}</span></div>'
        "<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        '<div class="ds-pager"><button type="button" class="ds-prev">&lsaquo; Previous</button> '
        '<span class="ds-page"></span> '
        '<button type="button" class="ds-next">Next &rsaquo;</button>'
        "</div><script>{script}</script></div>".format(
            id=table_id,
            style=_LIST_STYLE,
            title=esc(title),
            n=len(rows),
            head=head,
            body=body,
            script=_LIST_SCRIPT % {"id": table_id, "size": int(page_size)},
        )
    )


# Markdown ----------------------------------------------------------------------------------------

_MD_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_BULLET = re.compile(r"^\s{0,3}[-*+]\s+(.*)$")
_MD_NUMBERED = re.compile(r"^\s{0,3}\d{1,9}[.)]\s+(.*)$")
_MD_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_MD_QUOTE = re.compile(r"^\s{0,3}&gt;\s?(.*)$")
_MD_CODE = re.compile(r"(`+)(.+?)\1")
_MD_LINK = re.compile(r"\[([^\[\]]*)\]\(([^()\s]*)\)")
_MD_AUTOLINK = re.compile(r"&lt;(https?://[^\s&]+)&gt;", re.IGNORECASE)
_MD_BOLD_STARS = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
# Underscores emphasise only at word edges (``snake__case__name`` and ``a.__b`` stay as written).
_MD_BOLD_UNDERSCORES = re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_MD_ITALIC = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_SAFE_URL = re.compile(r"^https?://[^\s\"'<>`]+$", re.IGNORECASE)


def _md_inline(text):
    """Inline Markdown of one escaped line: code spans, links (http and https only), bold,
    italic. ``text`` is HTML-escaped already, so nothing here can open a tag of its own; code
    spans and links are set aside (as numbered NUL-delimited marks, which ``show`` has made
    impossible in the text itself) while emphasis is applied.
    """
    codes = []

    def keep_code(m):
        codes.append("<code>{}</code>".format(m.group(2)))
        return "\x00{}\x00".format(len(codes) - 1)

    def link(label, url, written):
        raw = html.unescape(url)
        if not _SAFE_URL.match(raw):
            return written  # shown as written: not a link
        codes.append(
            '<a href="{}" target="_blank" rel="noopener noreferrer nofollow">{}</a>'.format(
                html.escape(raw, quote=True), label
            )
        )
        return "\x00{}\x00".format(len(codes) - 1)

    text = _MD_CODE.sub(keep_code, text)
    text = _MD_LINK.sub(lambda m: link(m.group(1), m.group(2), m.group(0)), text)
    text = _MD_AUTOLINK.sub(lambda m: link(m.group(1), m.group(1), m.group(0)), text)
    text = _MD_BOLD_STARS.sub(r"<strong>\1</strong>", text)
    text = _MD_BOLD_UNDERSCORES.sub(r"<strong>\1</strong>", text)
    text = _MD_ITALIC.sub(r"<em>\2</em>", text)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], text)


def markdown_html(text):
    """A Markdown description from the server as HTML that runs nothing.

    Everything is HTML-escaped first (so raw HTML in the description shows as text), then a small
    Markdown subset is applied: headings, paragraphs, lists, quotes, rules, fenced and inline
    code, bold, italic, and links whose target is http or https (any other target, such as
    ``javascript:``, stays text).
    """
    lines = html.escape(show(text), quote=True).split("\n")
    out, para, items, fence, code = [], [], None, None, []

    def flush_para():
        if para:
            out.append("<p>{}</p>".format("<br>".join(_md_inline(p) for p in para)))
            para.clear()

    def flush_list():
        nonlocal items
        if items:
            tag, entries = items
            entries = "".join("<li>{}</li>".format(_md_inline(e)) for e in entries)
            out.append("<{0}>{1}</{0}>".format(tag, entries))
        items = None

    for line in lines:
        if fence is not None:
            m = _MD_FENCE.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                out.append("<pre><code>{}</code></pre>".format("\n".join(code)))
                fence, code = None, []
            else:
                code.append(line)
            continue
        m = _MD_FENCE.match(line)
        if m:
            flush_para()
            flush_list()
            fence = m.group(1)
            continue
        if not line.strip():
            flush_para()
            flush_list()
            continue
        m = _MD_HEADING.match(line)
        if m:
            flush_para()
            flush_list()
            level = min(len(m.group(1)) + 3, 6)  # below the object's own h3
            out.append("<h{0}>{1}</h{0}>".format(level, _md_inline(m.group(2))))
            continue
        if _MD_RULE.match(line):
            flush_para()
            flush_list()
            out.append("<hr>")
            continue
        for pattern, tag in ((_MD_BULLET, "ul"), (_MD_NUMBERED, "ol")):
            m = pattern.match(line)
            if m:
                flush_para()
                if items is None or items[0] != tag:
                    flush_list()
                    items = (tag, [])
                items[1].append(m.group(1))
                break
        else:
            m = _MD_QUOTE.match(line)
            if m:
                flush_para()
                flush_list()
                out.append("<blockquote>{}</blockquote>".format(_md_inline(m.group(1))))
                continue
            if items is not None and line.startswith((" ", "\t")):
                items[1][-1] += " " + line.strip()
                continue
            flush_list()
            para.append(line.strip())
    if fence is not None:
        out.append("<pre><code>{}</code></pre>".format("\n".join(code)))
    flush_para()
    flush_list()
    return '<div class="datasite-markdown">{}</div>'.format("".join(out))
