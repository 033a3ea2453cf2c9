"""Rule documentation as HTML: the small markup of the edits' docstrings, rendered.

The docstrings (:meth:`claimscrub.engine.Rule.documentation`) are plain text with a few
marks: inline code in double or single backquotes (``edits/mue.csv``), optionally behind a
Sphinx role (:func:`...`), bullet lists (``* `` or ``- `` items with indented continuation
lines), code fences (three backquotes), and paragraphs separated by blank lines, wrapped
at 90 columns. This renders exactly that as lxml elements (code spans as ``<code>``, fences
as ``<pre>``, lists as ``<ul>``), so no mark reaches the page; anything else stays text,
escaped by lxml.
"""

from __future__ import annotations

import re
from typing import Callable

from lxml import etree

#: ``code``, `code`, :role:`code` (the role is dropped)
_CODE = re.compile(r"(?::[A-Za-z][\w.-]*:)?(?:``(.+?)``|`([^`]+?)`)")
_BULLET = re.compile(r"^([*-])\s+(.*)$")
_FENCE = re.compile(r"^\s*```")


def inline(text: str) -> list:
    """Text and ``<code>`` elements for one paragraph's text."""
    out: list = []
    cursor = 0
    for match in _CODE.finditer(text):
        if match.start() > cursor:
            out.append(text[cursor : match.start()])
        code = etree.Element("code")
        code.text = match.group(1) if match.group(1) is not None else match.group(2)
        out.append(code)
        cursor = match.end()
    if cursor < len(text):
        out.append(text[cursor:])
    return out


def _element(tag: str, parts: list, **attrs: str) -> etree._Element:
    element = etree.Element(tag, **attrs)
    last = None
    for part in parts:
        if isinstance(part, str):
            if last is None:
                element.text = (element.text or "") + part
            else:
                last.tail = (last.tail or "") + part
        else:
            element.append(part)
            last = part
    return element


def render(text: str, clean: Callable[[str], str] = lambda s: s) -> list[etree._Element]:
    """The block elements (``<p>``, ``<ul>``, ``<pre>``) of a documentation section;
    ``clean`` is applied to every text value (escaping control characters, say)."""
    blocks: list[etree._Element] = []
    paragraph: list[str] = []
    items: list[list[str]] = []
    fence: list[str] | None = None

    def flush() -> None:
        if paragraph:
            blocks.append(_element("p", inline(clean(" ".join(paragraph)))))
            paragraph.clear()
        if items:
            ul = etree.Element("ul")
            for item in items:
                ul.append(_element("li", inline(clean(" ".join(item)))))
            blocks.append(ul)
            items.clear()

    for raw in text.splitlines():
        if fence is not None:
            if _FENCE.match(raw):
                pre = etree.Element("pre")
                pre.text = clean("\n".join(fence))
                blocks.append(pre)
                fence = None
            else:
                fence.append(raw)
            continue
        if _FENCE.match(raw):
            flush()
            fence = []
            continue
        line = raw.strip()
        if not line:
            flush()
            continue
        bullet = _BULLET.match(line)
        if bullet:
            if paragraph:
                blocks.append(_element("p", inline(clean(" ".join(paragraph)))))
                paragraph.clear()
            items.append([bullet.group(2)])
        elif items and raw[:1].isspace():
            items[-1].append(line)
        else:
            if items:
                flush()
            paragraph.append(line)
    if fence is not None:  # an unclosed fence: its text, as code
        pre = etree.Element("pre")
        pre.text = clean("\n".join(fence))
        blocks.append(pre)
    flush()
    return blocks


def plain(text: str) -> str:
    """``text`` without its code marks (for a tooltip or an option label)."""
    return _CODE.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)
