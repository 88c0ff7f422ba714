"""A small reader for the EDN that Jepsen writes (`history.edn`: one op map per line).

The subset: maps, vectors, lists, sets, keywords (read as the string ":name"),
strings, integers, floats, ratios, characters, nil, true, false, symbols,
comments, `#_` (discard) and tagged literals such as `#jepsen.history.Op{...}`
(read as the tagged value). Values may span lines. Anything else is a
`HistoryFormatError` naming the file and the line.

Speed: a line made only of maps, vectors, keywords, numbers and nil (what an
op of the txn workloads looks like) is rewritten into JSON by a few C-level
substitutions and parsed with the JSON parser; any other line goes through the
tokenizer below.
"""

from __future__ import annotations

import re
from pathlib import Path

from txlab.checker.loading import HistoryFormatError, _short, json_loads

_TOKEN = re.compile(r"""
    [\s,]+                        # whitespace (commas are whitespace)
  | ;[^\n]*                       # comment
  | "(?:[^"\\]|\\.)*"             # string
  | \#\{ | \#_ | \#[A-Za-z][\w.\-/]*   # set, discard, tag
  | [\[\](){}]
  | \\(?:newline|space|tab|return|[^\s])  # character
  | [^\s,\[\](){}";\\]+           # atom: keyword, symbol, number, nil, true, false
  | "                             # an unterminated string
""", re.VERBOSE)
_INT = re.compile(r"[+-]?\d+N?\Z")
_FLOAT = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?M?\Z")
_RATIO = re.compile(r"[+-]?\d+/\d+\Z")
_CHARS = {"newline": "\n", "space": " ", "tab": "\t", "return": "\r"}
_ESC = re.compile(r'\\(.)')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "b": "\b", "f": "\f"}
_CLOSE = {"[": "]", "(": ")", "{": "}", "#{": "}"}

# The fast path: only {} [] keywords integers nil true false and whitespace.
_PLAIN = re.compile(rb"[^\s,\[\]{}:\w\-.+*!?<>=/]")
_KEYWORD = re.compile(rb":([^\s,\[\]{}]+)")
_NIL = re.compile(rb"(?<![\w\":])nil(?![\w\"])")
_SEP = re.compile(rb"[\s,]+")
_OP_TAG = b"#jepsen.history.Op{"


def read_records(path: Path, lines):
    """(line number, value) for each top-level value; `lines` yields (number, bytes)."""
    stack: list = []  # open collections: [opener, items, line]
    discard: list = []  # depths at which a `#_` waits for the next form to drop
    for n, line in lines:
        if not stack and not discard:
            fast = _fast(line)
            if fast is not None:
                yield n, fast
                continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise HistoryFormatError(f"{path}:{n}: not UTF-8 text") from None
        end = 0
        for m in _TOKEN.finditer(text):
            if m.start() != end:
                raise HistoryFormatError(f"{path}:{n}: unexpected {text[end:m.start()]!r}")
            end = m.end()
            tok = m.group()
            c = tok[0]
            if c in " \t\r\n," or c == ";":
                continue
            if tok == '"':
                raise HistoryFormatError(f"{path}:{n}: a string is not closed on its line")
            if tok in ("[", "(", "{", "#{"):
                stack.append([tok, [], n])
                continue
            if tok == "#_":
                discard.append(len(stack))
                continue
            if c == "#":  # a tag: the value that follows stands for itself
                continue
            if tok in ("]", ")", "}"):
                if not stack or _CLOSE[stack[-1][0]] != tok:
                    raise HistoryFormatError(f"{path}:{n}: unexpected {tok!r}")
                opener, items, start = stack.pop()
                if opener == "{":
                    if len(items) % 2:
                        raise HistoryFormatError(f"{path}:{n}: a map needs an even number "
                                                 "of forms")
                    try:
                        value = dict(zip(items[::2], items[1::2], strict=True))
                    except TypeError:
                        raise HistoryFormatError(
                            f"{path}:{n}: a map key must be a keyword, number or string") from None
                else:
                    value = items
            else:
                value = _atom(tok, path, n)
                start = n
            if discard and discard[-1] == len(stack):
                discard.pop()
                continue
            if stack:
                top = stack[-1]
                top[1].append(_hashable(value) if top[0] == "{" and not len(top[1]) % 2
                              else value)
            else:
                yield start, value
        if end != len(text):
            raise HistoryFormatError(f"{path}:{n}: unexpected {text[end:end + 20]!r}")
    if stack:
        raise HistoryFormatError(f"{path}:{stack[-1][2]}: {stack[-1][0]!r} is never closed")


def _hashable(x):
    """Map keys inside maps must be hashable: vectors become tuples."""
    if type(x) is list:
        return tuple(_hashable(e) for e in x)
    return x


def _atom(tok: str, path, n: int):
    c = tok[0]
    if c == ":":
        return tok
    if c == '"':
        return _ESC.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), tok[1:-1])
    if tok == "nil":
        return None
    if tok == "true":
        return True
    if tok == "false":
        return False
    if c == "\\":
        return _CHARS.get(tok[1:], tok[1:])
    if c.isdigit() or (c in "+-" and len(tok) > 1 and tok[1].isdigit()):
        if _INT.match(tok):
            return int(tok.rstrip("N"))
        if _FLOAT.match(tok):
            return float(tok.rstrip("M"))
        if _RATIO.match(tok):
            a, b = tok.split("/")
            return int(a) / int(b) if int(b) else float("nan")
        raise HistoryFormatError(f"{path}:{n}: not a number: {_short(tok)}")
    return tok  # a symbol


def _fast(line: bytes):
    """One op map on a line, in the plain subset: rewritten to JSON and parsed in C."""
    s = line.strip()
    if s.startswith(_OP_TAG):
        s = s[len(_OP_TAG) - 1:]
    if s[:1] != b"{" or s.count(b"{") != 1 or _PLAIN.search(s):
        return None
    s = _KEYWORD.sub(rb'":\1"', s)
    s = _NIL.sub(b"null", s)
    s = _SEP.sub(b",", s).replace(b"{,", b"{").replace(b"[,", b"[")
    s = s.replace(b",}", b"}").replace(b",]", b"]")
    try:
        items = json_loads(b"[" + s[1:-1] + b"]") if s[-1:] == b"}" else None
    except ValueError:
        return None
    if items is None or len(items) % 2:
        return None
    try:
        return dict(zip(items[::2], items[1::2], strict=True))
    except TypeError:
        return None
