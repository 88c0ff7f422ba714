"""Generate docs/cli.md from the --help of every command: `python -m txlab.docgen`.

tests/test_docs.py checks that docs/cli.md is current.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from txlab.cli import cli


def _walk(cmd: click.Command, path: list[str]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            yield from _walk(cmd.commands[name], [*path, name])


def render() -> str:
    parts = ["# Command reference", "", "Generated from `--help` by `python -m txlab.docgen`; "
             "do not edit by hand.", ""]
    for path, cmd in _walk(cli, ["txlab"]):
        info_name = " ".join(path)
        ctx = click.Context(cmd, info_name=info_name, terminal_width=100, max_content_width=100)
        parts += [f"## `{info_name}`", "", "```", cmd.get_help(ctx).rstrip(), "```", ""]
    return "\n".join(parts)


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/cli.md")
    target.write_text(render())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
