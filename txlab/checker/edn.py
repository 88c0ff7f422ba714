"""A small reader for the EDN that Jepsen writes (`history.edn`: one op map per line).

The subset: maps, vectors, lists, sets, keywords (read as the string ":name"),
strings, integers, floats, ratios, characters, nil, true, false, symbols,
comments, `#_` (discard) and tagged literals such as `#jepsen.history.Op{...}`
(read as the tagged value). Values may span lines. Anything else is a
`HistoryFormatError` naming the file and the line.

Speed: a file is read a block of lines at a time. A block made only of maps,
vectors, keywords, numbers and nil (what the ops of the txn workloads look like)
is rewritten into JSON by a few C-level substitutions over the whole block
(`_Blocks`) and parsed with the JSON parser in one call; lines with anything else
(strings, comments, tags, ...) are taken out of the block and read by the
tokenizer below, and a block that still does not parse is read line by line
(`_Fast`, then the tokenizer).
"""

from __future__ import annotations

import re
from itertools import chain
from pathlib import Path

from txlab.checker.loading import (
    _DIGITS,
    _ZEROS,
    HistoryFormatError,
    _short,
    block_lines,
    blocks,
    huge_integers,
    json_loads,
)

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

_OP_TAG = b"#jepsen.history.Op{"
# lines with these take the tokenizer (so do lines with bytes beyond ASCII: the
# tokenizer's whitespace, Python's, includes characters such as U+00A0)
_RISKY = (b'"', b"\\", b";", b"(", b")", b"#")
_KW = re.compile(rb"(, | ):([^\s,\]}]*)(?=([\s,\]}]))")
_KW_AS_WRITTEN = re.compile(rb"(\{|, | |\[):([^\s,\]}]*)(?=([\s,\]}]))")
_SPACES = bytes.maketrans(b"\n\t\r ", b",,,,")
CHUNK = 4096  # lines


def read_file(path: Path, f):
    """(line number, value) for each top-level value of a binary file open at its start,
    read a block of lines at a time (numbers count every line, blank ones too). An
    iterator of C iterators: nothing runs in Python per value of a block read whole."""
    return chain.from_iterable(_file_parts(path, f))


def _file_parts(path: Path, f):
    slow = _Tokenizer(path)
    fast = _Fast()
    whole = _Blocks()
    for n, text, k in blocks(f):
        recs = None if slow.busy or not k else whole.parse(text, k)
        if recs is None:
            yield _records(path, block_lines(text, n), slow, fast)
        elif whole.clean:
            yield zip(range(n + 1, n + k + 1), recs, strict=True)
        else:
            yield _partial(text, n, recs, slow)
    slow.finish()


def _partial(text: bytes, n: int, recs: list, slow):
    """A block's values where some lines were taken out of it (None) or are not maps:
    the tokenizer reads those lines, and every line while a form it reads is open."""
    lines = None
    for i, rec in enumerate(recs):
        if rec.__class__ is dict and not slow.busy:
            yield n + 1 + i, rec
        else:
            if lines is None:
                lines = text.split(b"\n")
            if lines[i].strip():
                yield from slow.feed(n + 1 + i, lines[i])


def read_records(path: Path, lines):
    """(line number, value) for each top-level value; `lines` yields (number, bytes)."""
    slow = _Tokenizer(path)
    fast = _Fast()
    yield from _records(path, lines, slow, fast)
    slow.finish()


def _records(path: Path, lines, slow, fast):
    buf: list = []
    it = iter(lines)
    while True:
        buf = [x for _, x in zip(range(CHUNK), it, strict=False)]
        if not buf:
            break
        recs = fast.parse([line for _, line in buf]) if not slow.busy else [None] * len(buf)
        for (n, line), rec in zip(buf, recs, strict=True):
            if rec is not None and not slow.stack and not slow.discard:
                yield n, rec
            else:
                yield from slow.feed(n, line)


# A maximal run of keywords in their context, as Jepsen writes them: each keyword
# after "{", ", ", " " or "[", the next one after ", " or " ", and the space after
# the last one (which makes a key of it after "{" or ", ").
_PHRASE = re.compile(rb"(?:\{|, | |\[):[^\s,\[\]{}]+(?:(?:, | ):[^\s,\[\]{}]+)*(?: )?")
_PHRASE_KEY = re.compile(rb"(\{|, ):([^\s,\[\]{}]+) ")
_PHRASE_VALUE = re.compile(rb"(?<=[\s\[{,:]):([^\s,\[\]{}\"]+)")


class _Blocks:
    """A block of whole lines -> the value of each line, by one JSON parse.

    Each phrase (a maximal run of keywords with the separators between them, such as
    `{:type :ok, :f :txn, :process ` or `[:r `) is replaced by its JSON
    (`{":type":":ok",":f":":txn",":process":`, `[":r" `) over the whole block, the
    longest phrases first, after nil after a space has become null; whitespace then
    becomes commas. A block that does not parse teaches the phrases it holds and is
    tried again; one that still does not is read line by line (and after a run of
    such blocks, only every 16th block is tried whole, so that a file outside the
    subset costs little more than reading it line by line).

    The rewriting cannot turn anything but what the tokenizer reads into valid JSON:
    a keyword becomes the string ":name" (what the tokenizer reads) wherever it is
    replaced; a keyword the phrases miss is left with its colon (invalid JSON), and
    one replaced as a key where it is not a map's key, or as a value where it is,
    breaks the JSON object it sits in, because every space becomes a comma. Lines
    holding strings, comments, lists, tags, characters or integers beyond 64 bits
    are taken out of the block (they come back as None, for the tokenizer).
    """

    MAX_PHRASES = 24  # more (each costs a pass over every block): read line by line

    def __init__(self):
        self.phrases: list = []  # (phrase, its JSON), longest first
        self.clean = True  # the last parse: every line came out as a map
        self.misses = 0  # blocks in a row that did not parse

    def parse(self, text: bytes, k: int):
        """The value of each of the block's k lines (None: for the tokenizer), or None."""
        if self.misses >= 4 and self.misses % 16:
            self.misses += 1
            return None
        recs = self._parse(text, k)
        self.misses = 0 if recs is not None else self.misses + 1
        return recs

    def _parse(self, text: bytes, k: int):
        if b"#" in text:
            text = text.replace(_OP_TAG, b"{")
        out = None
        if b"\r" in text:
            text = text.replace(b"\r\n", b"\n")
            if b"\r" in text:
                return None
        if not text.isascii():
            return None
        if any(r in text for r in _RISKY) or huge_integers(text):
            text, out = _take_out(text, k)
            if text is None:
                return None
        t = b" null".join(text.split(b" nil"))
        for attempt in (0, 1):
            u = t
            for pat, rep in self.phrases:
                u = rep.join(u.split(pat))
            u = u.translate(_SPACES)
            try:
                recs = json_loads(b"[" + u[:-1] + b"]")
            except ValueError:
                recs = None
            if recs is not None and len(recs) == k:
                types = set(map(type, recs))
                self.clean = out is None and types == {dict}
                if out is not None:
                    for i in out:
                        recs[i] = None
                return recs
            if attempt or not self.learn(t):
                return None
        return None

    def learn(self, text: bytes) -> bool:
        """Add the phrases of text not known yet; False if none or too many."""
        known = {p for p, _ in self.phrases}
        new = set(_PHRASE.findall(text)) - known
        if not new or len(known) + len(new) > self.MAX_PHRASES:
            return False
        self.phrases += [(p, _phrase_json(p)) for p in new]
        self.phrases.sort(key=lambda pr: -len(pr[0]))
        return True


def _phrase_json(p: bytes) -> bytes:
    """A phrase's JSON: keys `":name":` (the space after them dropped, and ", " before
    them made ","), other keywords `":name"`; spaces stay (whitespace becomes commas)."""
    p = _PHRASE_KEY.sub(lambda m: m[1].strip() + b'":' + m[2] + b'":', p)
    return _PHRASE_VALUE.sub(lambda m: b'":' + m[1] + b'"', b" " + p)[1:]


def _take_out(text: bytes, k: int):
    """The block with each line that holds a risky character or a huge integer replaced
    by null, and the indices of those lines; (None, None) if that is more than a
    quarter of the lines (the block is then read line by line)."""
    most = k // 4
    spans: set = set()  # (start, end) of each such line
    for r in _RISKY:
        i = text.find(r)
        while i >= 0 and len(spans) <= most:
            b = text.find(b"\n", i)
            spans.add((text.rfind(b"\n", 0, i) + 1, b))
            i = text.find(r, b)
    if huge_integers(text):
        digits = text.translate(_DIGITS)
        i = digits.find(_ZEROS)
        while i >= 0 and len(spans) <= most:
            b = text.find(b"\n", i)
            spans.add((text.rfind(b"\n", 0, i) + 1, b))
            i = digits.find(_ZEROS, b)
    if len(spans) > most:
        return None, None
    parts = []
    out = []
    end = line = 0
    for a, b in sorted(spans):
        parts.append(text[end:a])
        parts.append(b"null")
        line += text.count(b"\n", end, a)
        out.append(line)
        end = b
    parts.append(text[end:])
    return b"".join(parts), out


class _Fast:
    """Lines made only of maps with keyword keys, vectors, keywords, numbers, nil, true and
    false are rewritten into JSON by a few substitutions over a whole chunk of lines and
    parsed by the JSON parser: each keyword seen so far is replaced by itself in quotes (a
    map key, after "{" or ", ", also gets its colon), nil by null, spaces and newlines by
    commas. First as Jepsen writes them (`{:type :ok, :f :txn, :value [[:r 1 nil]]}`: ", "
    between a map's entries, one space elsewhere); a chunk that does not parse teaches
    the keywords it holds and is tried again, then once more with its spacing made
    regular. A line that still does not come out as a JSON object, or that holds a
    string, a comment, a list, a tag or a character, goes to the tokenizer. The
    substitutions cannot turn anything else into valid JSON: a key's colon inside a
    vector, a keyword left unquoted or a symbol makes the line invalid."""

    def __init__(self):
        self.written: list = []  # (pattern, replacement) per keyword in context, as written
        self.quote: list = []  # the same once the spacing is made regular

    def learn_written(self, text: bytes) -> None:
        known = {p for p, _ in self.written}
        for pre, kw, d in set(_KW_AS_WRITTEN.findall(text)):
            if pre in (b"{", b", ") and d == b" ":  # a map's key
                pat, rep = pre + b":" + kw + b" ", pre.strip() + b'":' + kw + b'": '
            else:
                pat, rep = pre + b":" + kw + d, pre + b'":' + kw + b'"' + d
            if pat not in known:
                known.add(pat)
                self.written.append((pat, rep))

    def learn(self, text: bytes) -> None:
        known = {p for p, _ in self.quote}
        for pre, kw, d in set(_KW.findall(text)):
            if pre == b", " and d == b" ":  # a map's key
                pat, rep = b", :" + kw + b" ", b',":' + kw + b'": '
            else:
                pat, rep = b" :" + kw + d, b' ":' + kw + b'"' + d
            if pat not in known:
                known.add(pat)
                self.quote.append((pat, rep))

    def as_written(self, text: bytes):
        u = text
        for pat, rep in self.written:
            u = u.replace(pat, rep)
        u = u.replace(b'": ', b'":').replace(b" nil", b" null").translate(_SPACES)
        try:
            return json_loads(b"[" + u.rstrip(b",") + b"]")
        except ValueError:
            return None

    def parse(self, lines: list) -> list:
        out = [None] * len(lines)
        if lines and lines[0][-1:] == b"\n":
            lines = [x.rstrip(b"\r\n") for x in lines]
        text = b"\n".join(lines).replace(_OP_TAG, b"{")
        if any(r in text for r in _RISKY) or huge_integers(text) or not text.isascii():
            lines = [b"nil" if any(r in line for r in _RISKY) or huge_integers(line)
                     or not line.isascii() else line
                     for line in (x.replace(_OP_TAG, b"{") for x in lines)]
            text = b"\n".join(lines)
        text += b"\n"
        for attempt in (0, 1):
            recs = self.as_written(text)
            if recs is not None and len(recs) == len(out):
                return [r if type(r) is dict else None for r in recs]
            if not attempt:
                self.learn_written(text)
        t = text.replace(b"{:", b"{, :").replace(b"[:", b"[ :")
        for _ in (0, 1):
            u = self._json(t)
            if u is not None:
                break
            self.learn(t)
        else:
            return out  # some keyword is still unquoted: the tokenizer will read the chunk
        try:
            recs = json_loads(b"[" + u.strip(b",") + b"]")
        except ValueError:
            recs = None
        if recs is not None and len(recs) == len(out):
            return [r if type(r) is dict else None for r in recs]
        for i, part in enumerate(t.split(b"\n")[:len(out)]):  # line by line, then
            u = self._json(part + b"\n")
            try:
                rec = json_loads(u.strip(b",")) if u is not None else None
            except ValueError:
                continue
            if type(rec) is dict:
                out[i] = rec
        return out

    def _json(self, t: bytes) -> bytes | None:
        """Keywords quoted, nil null, separators commas; None if a keyword is unknown."""
        u = t
        for pat, rep in self.quote:
            u = u.replace(pat, rep)
        if b" :" in u:
            return None
        u = (u.replace(b'": ', b'":').replace(b" nil", b" null").replace(b"{,", b"{")
             .replace(b"[ ", b"[").translate(_SPACES))
        while b",," in u:
            u = u.replace(b",,", b",")
        return u.replace(b",]", b"]").replace(b",}", b"}").replace(b"[,", b"[")


class _Tokenizer:
    """Any EDN, a line at a time; values may span lines."""

    def __init__(self, path):
        self.path = path
        self.stack: list = []  # open collections: [opener, items, line]
        self.discard: list = []  # depths at which a `#_` waits for the next form to drop

    @property
    def busy(self) -> bool:
        return bool(self.stack or self.discard)

    def finish(self) -> None:
        if self.stack:
            raise HistoryFormatError(f"{self.path}:{self.stack[-1][2]}: "
                                     f"{self.stack[-1][0]!r} is never closed")

    def feed(self, n: int, line: bytes):
        path, stack, discard = self.path, self.stack, self.discard
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
