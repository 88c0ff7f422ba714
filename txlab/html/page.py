"""The shell every page shares: one self-contained HTML document, nothing fetched.

`document` wraps a page's body with the inline stylesheet and scripts (package
data files under txlab/html/assets/, read when a page is rendered) and embeds
the page's data as JSON (`<script type="application/json" id="txlab-data">`),
the same dicts `--format json` prints. Small helpers for escaping and the
words shared by every page live here too.
"""

from __future__ import annotations

import html
import json
from importlib import resources

from txlab import __version__

DATA_ID = "txlab-data"


def esc(value) -> str:
    """Text or attribute value, escaped (None is the empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def attrs(**values) -> str:
    """` name="value"` for each value that is not None (`data_x` is written data-x)."""
    out = []
    for k, v in values.items():
        if v is None or v is False:
            continue
        name = k.rstrip("_").replace("_", "-")
        out.append(f" {name}" if v is True else f' {name}="{esc(v)}"')
    return "".join(out)


def json_for_script(data) -> str:
    """JSON that cannot end its <script> element early: every "<" (only ever inside a
    string in JSON) is written \\u003c."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c")


def asset(name: str) -> str:
    return resources.files("txlab.html").joinpath("assets", name).read_text(encoding="utf-8")


def document(title: str, body: str, data, scripts: tuple[str, ...] = (), page: str = "") -> str:
    """The whole page: inline CSS, the body, the data as JSON, then the scripts."""
    js = "\n".join(asset(f"{s}.js") for s in ("common", *scripts))
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="txlab {esc(__version__)}">'
        f"<title>{esc(title)}</title>\n<style>\n{asset('page.css')}</style></head>\n"
        f'<body data-page="{esc(page)}">\n{body}\n'
        f'<footer><p>Made by txlab {esc(__version__)}. This page is self-contained: no network, '
        "styles, scripts and data inline. Its data (below, as JSON) is what "
        "<code>--format json</code> prints.</p></footer>\n"
        '<div id="tip" role="tooltip" hidden></div>\n'
        f'<script type="application/json" id="{DATA_ID}">{json_for_script(data)}</script>\n'
        f"<script>\n{js}</script>\n</body></html>\n"
    )


def badge(word: str, kind: str) -> str:
    """A verdict word in a coloured box; the word itself carries the meaning."""
    return f'<span class="badge {esc(kind)}">{esc(word)}</span>'


def table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A plain table; cells are HTML already escaped by the caller."""
    head = "".join(f"<th scope=\"col\">{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def result_table(res: dict | None, caption: str = "") -> str:
    """A query result in the demo JSON's shape ({"columns", "rows"} or an error)."""
    if res is None:
        return ""
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    if "columns" not in res:
        what = f"{res.get('sqlstate') or ''} {res.get('message') or res.get('status') or ''}"
        return f'<p class="result-status">{esc(what.strip())}</p>'
    head = "".join(f'<th scope="col">{esc(c)}</th>' for c in res["columns"])
    rows = "".join("<tr>" + "".join(f"<td>{esc('NULL' if v is None else v)}</td>" for v in r)
                   + "</tr>" for r in res["rows"])
    n = len(res["rows"])
    return (f'<table class="result">{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
            f'</table><p class="rowcount">({n} row{"" if n == 1 else "s"})</p>')
