"""Docs stay in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

from txlab import docgen

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current():
    assert (ROOT / "docs" / "cli.md").read_text() == docgen.render(), (
        "docs/cli.md is stale: run .venv/bin/python -m txlab.docgen"
    )


def test_readme_quick_start_is_two_make_commands():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert "txlab run bank-transfer --isolation serializable" in makefile


def test_readme_documents_every_run_option():
    readme = (ROOT / "README.md").read_text()
    from txlab.cli import run

    for param in run.params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert opt in readme, opt


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_deadlock_verdict_the_docs_quote_is_the_one_printed(txlab, pg_dsn):
    # teaching.md and demos.md named s1 as the victim after the spec made s2 the one
    # whose check closes the cycle; a teacher reading them aloud said the wrong thing.
    r = txlab("demo", "deadlock", "-i", "rc", "--dsn", pg_dsn)
    assert r.exit_code == 0, r.output
    printed = _flat(r.stdout)
    for doc in ("teaching.md", "demos.md"):
        text = _flat((ROOT / "docs" / doc).read_text())
        quoted = re.findall(r"`(DEADLOCK: [^`]*)`", text)
        assert quoted, doc
        for q in quoted:
            assert q in printed, (doc, q)
