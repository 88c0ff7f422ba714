"""Regenerate the golden transcripts with PostgreSQL's real isolationtester.

    TXLAB_TEST_DSN=... .venv/bin/python tests/golden/regen.py

Writes tests/golden/grammar/NAME.out for each grammar spec (and public/NAME.out
for the specs that name `public`: run this on a scratch server only) and
tests/golden/demos/NAME.LEVEL.out for each catalog demo at every level. The
transcripts carry no PIDs, XIDs or timings, so they compare byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from txlab import db, server  # noqa: E402
from txlab.interleave import demo  # noqa: E402

STEP_TIMEOUT_S = 2  # isolationtester's max_step_wait is 2 x PG_TEST_TIMEOUT_DEFAULT


def isolationtester() -> Path:
    return server.bin_dir().parent / "lib" / "pgxs" / "src" / "test" / "isolation" / "isolationtester"


def oracle(spec_text: str, dsn: str, level: str | None = None) -> bytes:
    env = {**os.environ, "PG_TEST_TIMEOUT_DEFAULT": str(STEP_TIMEOUT_S // 2)}
    env.pop("PGOPTIONS", None)
    if level:
        env["PGOPTIONS"] = "-c default_transaction_isolation=" + db.LEVELS[level].sql.lower().replace(" ", "\\ ")
    done = subprocess.run([str(isolationtester()), dsn], input=spec_text.encode(), env=env,
                          capture_output=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"isolationtester failed: {done.stderr.decode()}")
    return done.stdout


def main() -> None:
    dsn = os.environ["TXLAB_TEST_DSN"]
    for spec in sorted([*(HERE / "grammar").glob("*.spec"), *(HERE / "public").glob("*.spec")]):
        spec.with_suffix(".out").write_bytes(oracle(spec.read_text(), dsn))
        print("wrote", spec.with_suffix(".out").relative_to(ROOT))
    for name, path in demo.catalog().items():
        for level in demo.LEVEL_ORDER:
            out = HERE / "demos" / f"{name}.{level}.out"
            out.write_bytes(oracle(path.read_text(), dsn, level))
        print("wrote", name)


if __name__ == "__main__":
    main()
