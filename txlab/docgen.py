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


INTRO = """\
## Options that mean the same everywhere

| option | meaning |
|---|---|
| `-h`, `--help` | help, on every command |
| `--no-color` | plain text even on a terminal; before the command (`txlab --no-color run ...`) or after it. `NO_COLOR` (any value) does the same |
| `--format FORMAT` | on every command that prints a report (`run`, `matrix`, `demo`, `acid`, `check`, `explain`): `text` is the readable view, `json` the data; some add `markdown`, `csv`, `transcript`. The old names `table` and `pretty` still mean `text` |
| `-o`, `--output FILE` | the same commands: write the report to FILE, as plain text (no colour), COLUMNS (else 80) wide |
| `-i`, `--isolation LEVEL` | `read-uncommitted`, `read-committed`, `repeatable-read`, `serializable` (SQL spellings in any case, with `-`, `_`, a space or nothing between words, `serialisable`, and `ru`/`rc`/`rr`/`ser` too; `txlab check -i/-m` takes the same); `all` where several levels make sense (`matrix`, `demo`) |
| `-s`, `--strategy NAME` | a scenario's strategy (`txlab describe SCENARIO`) |
| `-p`, `--param KEY=VALUE` | a scenario knob, in `run` and `matrix` (a matrix applies it to the scenarios that have it) |
| `-P`, `--permutation "s1a s2a ..."` | `demo` only (its old short name `-p` still works) |
| `-w`, `--workers N`; `-n`, `--transactions N`; `--seed N`; `--retries N` | the same in `run` and `matrix` |
| `--think-ms MS` | one default (1 ms) in `run` and `matrix` |
| `--no-fail` | `run` and `matrix`: exit 0 even when an invariant was violated |

**Durations carry their unit in their name.** Seconds (`-s`) for how long txlab
runs or waits: `--duration-s` (`-d`), `--step-timeout-s`, `--time-limit-s`;
milliseconds (`-ms`) for what happens inside a transaction and PostgreSQL
settings: `--think-ms`, `--lock-timeout-ms`, `--statement-timeout-ms`,
`--deadlock-timeout-ms`. The older spellings `--duration`, `--step-timeout` and
`--time-limit` keep working (not shown in `--help`). A seconds option takes a plain
number (`-d 5`), and a trailing `s` or `ms` too (`-d 5s`, `-d 500ms`); anything else
(`-d 5m`) is a usage error that says so (exit 2).

**Output.** Every human-facing output fits the terminal's width (else `COLUMNS`,
else 80 columns): table cells wrap, long SQL is shortened with an ellipsis, and a
table with no room becomes one block per row. Verdicts and outcomes are coloured
on a terminal, always next to their words (HOLDS / VIOLATED, allowed / FORBIDDEN,
committed / aborted / waiting); piped, in a file (`-o`), with `NO_COLOR` or
`--no-color` the output is plain text without a single escape code. Every term a
report prints is explained by `txlab explain TERM`.

## Shell completion

Completion (click's) knows the commands, options, scenario names, demo names,
strategies (of the scenario already typed), isolation levels and `explain` terms.

```sh
# bash: add to ~/.bashrc
eval "$(_TXLAB_COMPLETE=bash_source txlab)"
# zsh: add to ~/.zshrc
eval "$(_TXLAB_COMPLETE=zsh_source txlab)"
# fish: write once
_TXLAB_COMPLETE=fish_source txlab > ~/.config/fish/completions/txlab.fish
```

(Generating the script once into a file and sourcing that file starts shells faster.)
"""


def render() -> str:
    parts = ["# Command reference", "", "Generated from `--help` by `python -m txlab.docgen`; "
             "do not edit by hand.", "", INTRO]
    for path, cmd in _walk(cli, ["txlab"]):
        info_name = " ".join(path)
        ctx = cmd.context_class(cmd, info_name=info_name, terminal_width=100,
                                max_content_width=100, **cmd.context_settings)
        parts += [f"## `{info_name}`", "", "```", cmd.get_help(ctx).rstrip(), "```", ""]
    return "\n".join(parts)


def main() -> None:
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1].startswith("-")):
        print("usage: python -m txlab.docgen [FILE]   (writes every command's --help "
              "as markdown; FILE defaults to docs/cli.md)")
        sys.exit(0 if sys.argv[1:] in (["-h"], ["--help"]) else 2)
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/cli.md")
    target.write_text(render())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
