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
