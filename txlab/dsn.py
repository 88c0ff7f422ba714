"""DSNs: parsing, validation, and keeping their secrets out of every message.

A DSN is a URL (`postgresql://user:secret@host/db?...`) or key=value pairs
(`host=... password=...`). Its secrets are found here *without* trusting the DSN
to parse: a malformed one (a bad percent-escape, a broken IPv6 bracket, `%00`)
is exactly the case where libpq quotes the bad part, or the whole URL, in its
error message. Every message that may carry DSN-derived text goes through
`mask_text`; the DSN itself is shown only through `mask_dsn`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from difflib import SequenceMatcher
from urllib.parse import unquote

import psycopg2
import psycopg2.extensions

from txlab.errors import UsageError

SECRET_KEYS = ("password", "sslpassword", "oauth_client_secret", "scram_client_key",
               "scram_server_key")
# libpq's connection keywords (PostgreSQL 18): a secret value runs up to the next of
# these, since an unescaped `&`, space or `=` may be part of it.
KEYWORDS = SECRET_KEYS + (
    "host", "hostaddr", "port", "dbname", "user", "passfile", "require_auth",
    "channel_binding", "connect_timeout", "client_encoding", "options", "application_name",
    "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode",
    "requiressl", "sslnegotiation", "sslcompression", "sslcert", "sslkey", "sslkeylogfile",
    "sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname", "gsslib",
    "gssdelegation", "service", "target_session_attrs", "load_balance_hosts",
    "min_protocol_version", "max_protocol_version", "oauth_issuer", "oauth_client_id",
    "oauth_scope",
)
MASK = "***"
_URL = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*://")
_SECRET = "|".join(SECRET_KEYS)
_NEXT = "|".join(KEYWORDS)
_QUERY_SECRET = re.compile(rf"(?:^|&)\s*(?:{_SECRET})\s*=(.*?)(?=&\s*(?:{_NEXT})\s*=|$)",
                           re.IGNORECASE | re.DOTALL)
# key=value pairs: a quoted value, or one that runs to the next keyword; the `=`
# itself optional, since "password secret" (a missing `=`) is exactly what libpq
# then quotes in its error.
_PAIR = re.compile(rf"(?:^|\s)(?:{_SECRET})\s*(?:=\s*)?"
                   rf"((?:'(?:[^'\\]|\\.)*'?)?.*?(?=\s+(?:{_NEXT})\s*=|\s*$))",
                   re.IGNORECASE | re.DOTALL)


def _spans(dsn: str) -> list[tuple[int, int]]:
    """Where in `dsn` its secrets are, or may be (start, end), found without trusting
    it to parse.

    Generous on purpose: in a URL, the userinfo runs to the *last* `@` (libpq
    stops at the first `@` or `/`, so a password holding either is misparsed into
    the host or port, which libpq then quotes in its error).
    """
    spans = []
    m = _URL.match(dsn)
    if m:
        start = m.end()
        rest = dsn[start:]
        query_at = rest.find("?")
        for end in (query_at if query_at >= 0 else len(rest), len(rest)):
            at = rest.rfind("@", 0, end)  # `?` or `@` inside an unescaped password
            colon = rest.find(":", 0, max(at, 0))
            if at >= 0 and colon >= 0:
                spans.append((start + colon + 1, start + at))
        if query_at >= 0:
            base = start + query_at + 1
            spans += [(base + q.start(1), base + q.end(1))
                      for q in _QUERY_SECRET.finditer(rest[query_at + 1:])]
    spans += [p.span(1) for p in _PAIR.finditer(dsn)]
    return [(a, b) for a, b in spans if b > a]


def secrets(dsn: str) -> list[str]:
    """Every string in `dsn` that is, or may be, a secret: raw, unquoted, decoded."""
    found: set[str] = set()
    for a, b in _spans(dsn):
        value = dsn[a:b]
        found.add(value)
        if value.startswith("'"):
            found.add(value[1:])
            quoted = re.match(r"'((?:[^'\\]|\\.)*)'", value)
            if quoted:
                found.add(quoted.group(1))
    for value in list(found):
        found.add(re.sub(r"\\(.)", r"\1", value))
    for value in list(found):
        found.add(unquote(value, errors="replace"))
        found.add(unquote(value, errors="replace").replace("\x00", ""))
    return sorted((s for s in found if s), key=len, reverse=True)


def _lcs(a: str, b: str):
    return SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))


def _touches(value: str, secret: str) -> bool:
    """Whether `value` shows any of `secret`: is part of it, contains it, or shares a
    run of three or more characters with it (a misparse can split a password)."""
    if not value:
        return False
    return value in secret or secret in value or _lcs(value, secret).size >= min(3, len(secret))


_HOLE = "\uffff"  # stands for a masked part until the end, so no secret can match it


# Words of txlab's and libpq's own messages: a run of a secret's characters inside one
# of them says nothing of the secret (a password "postgres" shares "ostgre" with
# "PostgreSQL"), so it is left readable. A whole secret is masked even there.
_PLAIN_WORDS = sorted({
    "PostgreSQL", "Postgres", "postgresql", "postgres", "localhost", "database", "connection",
    "connect", "cannot", "parse", "password", "authentication", "failed", "server", "socket",
    "running", "accepting", "connections", "refused", "Connection", "host", "port", "user",
    "error", "invalid", "txlab", "timeout", "expired", "through", "exist", "does",
}, key=len, reverse=True)
_KEEP = re.compile("|".join(map(re.escape, _PLAIN_WORDS)))


# A secret shorter than this is masked only where it stands as a word of its own:
# a password "val" says nothing of "invalid", nor "hunter2" of "integer".
_WORD_SECRET = 8
_LONG_RUN = 6  # in free text, a run this long of a secret of _WORD_SECRET or more is masked


def _whole(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` holed; a short secret only where it is
    not part of a longer word (letters and digits on neither side)."""
    if len(secret) >= _WORD_SECRET:
        return text.replace(secret, _HOLE)
    before = r"(?<![^\W_])" if secret[0].isalnum() else ""
    after = r"(?![^\W_])" if secret[-1].isalnum() else ""
    return re.sub(before + re.escape(secret) + after, _HOLE, text)


def _runs(text: str, found: list[str], least: int = 3) -> str:
    """`text` with any run of `least` or more of the secrets' characters holed,
    except inside txlab's and libpq's own words."""
    kept: list[str] = []

    def keep(m: re.Match) -> str:  # out of reach of the runs below, put back after
        kept.append(m.group(0))
        return chr(0xE000 + len(kept) - 1) if len(kept) <= 0x1000 else m.group(0)

    text = _KEEP.sub(keep, text)
    for s in found:
        start = 0
        while len(s) >= least:
            m = _lcs(text[start:], s)
            if m.size < least:
                break
            a = start + m.a
            if least > 3 and text[a:a + m.size].isalpha():  # an ordinary word in free text
                start = a + m.size
                continue
            text = text[:a] + _HOLE + text[a + m.size:]
    return re.sub("[\ue000-\uefff]", lambda m: kept[ord(m.group(0)) - 0xE000], text)


def _mask_with(text: str, found: list[str]) -> str:
    """`text` with the secrets in `found` masked: each whole secret (of three or more
    characters) wherever it stands; inside a quoted fragment (where libpq and the
    server quote values, and where a misparsed DSN's parts end up), also any run
    of three or more of a secret's characters, and the whole fragment if it is
    part of a secret, however short. Free text keeps its words (a run of a
    password's characters inside "integer" or "invalid" says nothing of it),
    except for a run of six or more characters of a long secret that is not letters
    only (an ordinary word may share that much with a password; "Qx7can" does not)."""
    for s in found:  # whole secrets first
        text = _whole(text, s) if len(s) >= 3 else text
    text = _runs(text, [s for s in found if len(s) >= _WORD_SECRET], _LONG_RUN)

    def fragment(m: re.Match) -> str:
        inner = m.group(1)
        if inner and any(inner in s for s in found):
            return f'"{_HOLE}"'
        return f'"{_runs(inner, found)}"'

    text = re.sub(r'"([^"]*)"', fragment, text)
    return re.sub(f"{_HOLE}+", MASK, text)


def mask_text(text: str, dsn: str | None) -> str:
    """`text` (e.g. a libpq or server message) with nothing of `dsn`'s secrets left in it.

    The secrets, any run of three or more of their characters, and any quoted
    fragment that is part of one become ***.
    """
    found = secrets(dsn) if dsn else []
    return _mask_with(_dsn_parts(text, dsn), found) if found else text


def _dsn_parts(text: str, dsn: str) -> str:
    """`text` with the DSN, or a quoted part of it (libpq quotes the rest of a DSN it
    cannot parse: `missing "=" after "mysql://bob:pw@host/db"`), holed where its
    secrets are, however short: a two-letter password is too short to be masked
    wherever it appears, but not inside the DSN that holds it."""
    holed = dsn
    for a, b in _spans(dsn):
        holed = holed[:a] + _HOLE * (b - a) + holed[b:]
    text = text.replace(dsn, holed)

    def part(m: re.Match) -> str:
        inner = m.group(1)
        at = dsn.find(inner) if inner else -1
        return m.group(0) if at < 0 else f'"{holed[at:at + len(inner)]}"'

    return re.sub(r'"([^"]*)"', part, text)


def mask_all(text: str, dsns) -> str:
    """`mask_text` for every DSN in `dsns` (None entries are skipped)."""
    for dsn in dsns:
        text = mask_text(text, dsn)
    return text


def given(args: list[str], env: Mapping[str, str]) -> list[str]:
    """Every DSN a command may have seen (--dsn in its arguments, TXLAB_DSN,
    DATABASE_URL), so that no error message can show one of their secrets."""
    found = [env.get("TXLAB_DSN"), env.get("DATABASE_URL")]
    for i, arg in enumerate(args):
        if arg == "--dsn" and i + 1 < len(args):
            found.append(args[i + 1])
        elif arg.startswith("--dsn="):
            found.append(arg.removeprefix("--dsn="))
    return [d for d in found if d]


def mask_dsn(dsn: str) -> str:
    """The DSN for display, its secrets replaced by ***, whether or not it parses."""
    shown = dsn
    for a, b in sorted(_spans(dsn), reverse=True):  # where they are, however short
        shown = shown[:a] + _HOLE * (b - a) + shown[b:]
    return _mask_with(shown, secrets(dsn))


def parse_dsn(dsn: str, source: str = "the database URL") -> dict[str, str]:
    """libpq's own parse of a URL or key=value DSN; a UsageError (exit 2) if it does not
    parse, naming `source` and showing the DSN masked."""
    if not dsn.strip():
        raise UsageError(f"{source} is empty; give a PostgreSQL URL such as "
                         "postgresql://user@host/dbname, or leave it out to use an embedded server")
    scheme = _URL.match(dsn)
    if scheme and re.fullmatch(r"postgres(?:ql)?\+\w+://", scheme.group(0).strip(), re.I):
        driver = "+" + scheme.group(0).strip()[:-3].split("+")[1]
        raise UsageError(f"{source} ({mask_dsn(dsn)}) is a SQLAlchemy URL: txlab takes "
                         f"postgresql://...; drop its driver part, {driver}")
    if scheme and scheme.group(0).strip().lower() not in ("postgresql://", "postgres://"):
        raise UsageError(f"{source} ({mask_dsn(dsn)}) is a {scheme.group(0).strip()} URL; txlab "
                         "works with PostgreSQL only: give a URL such as "
                         "postgresql://user@host/dbname")
    if scheme and _misread_userinfo(dsn[scheme.end():]):
        raise UsageError(f"{source} ({mask_dsn(dsn)}) has an @ or / in its password (or an @"
                         " after the host): libpq would read part of the password as the host"
                         " or database name. Percent-encode those characters: @ as %40, / as"
                         " %2F (postgresql://user:p%40ss@host/dbname)")
    try:
        return psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError as exc:
        reason = str(exc).strip().removeprefix("invalid dsn:").strip()
        raise UsageError(f"cannot parse {source} ({mask_dsn(dsn)}): "
                         f"{mask_text(reason, dsn)}") from None
    except UnicodeDecodeError:  # a percent-escape that decodes to bytes that are not UTF-8
        raise UsageError(f"cannot parse {source} ({mask_dsn(dsn)}): a percent-escape in it "
                         "does not decode to UTF-8 text") from None


def _misread_userinfo(rest: str) -> bool:
    """Whether a URL (after `scheme://`) has a password that libpq would split: its
    user-info, up to the last @ before any ?, holds a `:` and also an @ or a /.
    libpq ends the user-info at the first @ and the host at the first /, so the rest
    of such a password becomes the host or the database name, which messages show."""
    query = rest.find("?")
    at = rest.rfind("@", 0, query if query >= 0 else len(rest))
    info = rest[:max(at, 0)]
    return ":" in info and ("@" in info or "/" in info)


def describe_target(dsn: str) -> str:
    """host, port and database of a DSN, for messages; nothing of its secrets."""
    try:
        p = parse_dsn(dsn)
    except UsageError:
        return mask_dsn(dsn)
    found = secrets(dsn)

    def show(value: str) -> str:
        if value in _PLAIN_WORDS:  # localhost, postgres, txlab: unless a secret is in it
            return MASK if any(s == value or s in value for s in found) else value
        return MASK if any(_touches(value, s) for s in found) else value

    host = show(p.get("host") or p.get("hostaddr") or "local socket")
    port = show(p.get("port") or "5432")
    return f"host {host}, port {port}, database {show(p.get('dbname') or p.get('user') or '(default)')}"


# libpq checks option values when connecting, before any network traffic; these
# are its messages for a bad value (fe-connect.c). There is no SQLSTATE to go by.
_BAD_VALUE = re.compile(
    r"^(invalid (integer value|port number|\S+ value|\S+ method)\b|could not match \d+ )")


def is_bad_value(reason: str) -> bool:
    """Whether a connection failure is libpq refusing a DSN value (a usage error)."""
    return bool(_BAD_VALUE.match(reason))
