"""How fast is `txlab check FILE`, end to end? File in, verdict out; figures printed.

    .venv/bin/python bench/check_speed.py                        # 100k and 1M, all formats
    .venv/bin/python bench/check_speed.py --sizes 100000 --formats txlab --kinds si

Synthetic histories (txlab/checker/synthetic.py: 8 workers, 1-4 reads and writes of
200 keys per transaction) are written once to --dir, as txlab's JSON lines, and as
the same history in Elle's rw-register form as JSON lines and as Jepsen's EDN:

- serial: one transaction at a time; no anomaly can exist (checked as serializable);
- si: snapshot isolation, first committer wins; write skew appears, nothing that
  snapshot isolation forbids (checked as snapshot-isolation).

Each measurement runs in a fresh child process: either the bare parse (a
`json.loads` of every line of the JSON file; for EDN, of the Elle JSON file of the
same history) or txlab's whole check (load, check, render the text report). The two
alternate, --reps times; the ratio is the median of the per-round ratios of CPU
time (user + system: the machine is shared, so wall-clock time is noisy). Peak RSS
is the child's maxrss. With --against DIR (another txlab checkout, e.g. a worktree
of main), that checkout's check runs in the same rounds too, and a second line
gives its figures: a before/after comparison under the same load. Nothing here is
asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FORMATS = ("txlab", "elle-json", "edn")
SUFFIX = {"txlab": "jsonl", "elle-json": "elle.json", "edn": "edn"}
MODEL = {"serial": "serializable", "si": "snapshot-isolation"}


def child(what: str, path: str, model: str, root: str | None = None) -> None:
    if root:  # another checkout's txlab, ahead of this one's
        sys.path.insert(0, root)
    t0, c0 = time.perf_counter(), time.process_time()
    if what == "bare":
        n = 0
        with open(path, "rb") as f:
            for line in f:
                json.loads(line)
                n += 1
        out = {"records": n}
    else:
        from txlab import checker

        if root and not checker.__file__.startswith(str(Path(root).resolve())):
            sys.exit(f"--against {root}: txlab comes from {checker.__file__}")
        r = checker.check(path, model)
        checker.render(r, "text")
        out = {"verdict": r.verdict, "transactions": r.history["transactions"],
               "anomalies": {k: a["count"] for k, a in r.anomalies.items()}}
    out.update(cpu=time.process_time() - c0, wall=time.perf_counter() - t0, rss_mb=peak_rss_mb())
    print(json.dumps(out))


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: unlike ru_maxrss, not inherited from the
    parent across exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(what: str, path: Path, model: str, root: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", what, str(path), model]
    if root:
        cmd += ["--root", root]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def files(folder: Path, kind: str, n: int) -> dict:
    """The three files of one synthetic history, written once."""
    from txlab import history
    from txlab.checker import synthetic

    paths = {f: folder / f"{kind}-{n}.{SUFFIX[f]}" for f in FORMATS}
    if not all(p.exists() for p in paths.values()):
        folder.mkdir(parents=True, exist_ok=True)
        print(f"  (writing the {kind} history of {n:,} transactions to {folder})", flush=True)
        h = synthetic.generate(kind, n)
        history.write(h, paths["txlab"])
        ops = synthetic.elle_ops(h)
        del h
        synthetic.write_elle(ops, paths["elle-json"], "json")
        synthetic.write_elle(ops, paths["edn"], "edn")
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--kinds", default="serial,si")
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--reps", type=int, default=3, help="alternating rounds per file")
    ap.add_argument("--dir", default=os.environ.get("TMPDIR", "/tmp") + "/txlab-check-bench")
    ap.add_argument("--against", metavar="DIR",
                    help="also time another txlab checkout's check in the same rounds")
    ap.add_argument("--child", nargs=3, metavar=("WHAT", "PATH", "MODEL"), help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child, root=a.root)
        return
    if a.against and not (Path(a.against) / "txlab" / "checker").is_dir():
        sys.exit(f"--against {a.against}: not a txlab checkout (no txlab/checker there)")
    print(f"python {sys.version.split()[0]}; {a.reps} alternating rounds; CPU seconds "
          "(user+system) of a fresh process; ratio = txlab / bare json.loads, median of rounds")
    head = (f"{'format':<10} {'kind':<6} {'txns':>9} {'file MB':>8} {'bare s':>7} {'txlab s':>8} "
            f"{'ratio':>6} {'txn/s':>9} {'wall s':>7} {'peak RSS MB':>12}  verdict")
    print(head)
    for kind in a.kinds.split(","):
        for n in (int(x) for x in a.sizes.split(",")):
            paths = files(Path(a.dir), kind, n)
            for fmt in a.formats.split(","):
                path = paths[fmt]
                bare_path = paths["elle-json"] if fmt == "edn" else path
                bare, runs = [], {"txlab": [], "against": []}
                for _ in range(a.reps):
                    bare.append(measure("bare", bare_path, MODEL[kind]))
                    runs["txlab"].append(measure("txlab", path, MODEL[kind]))
                    if a.against:
                        runs["against"].append(measure("txlab", path, MODEL[kind], a.against))
                b_cpu = statistics.median(x["cpu"] for x in bare)
                for who, mine in runs.items():
                    if not mine:
                        continue
                    ratio = statistics.median(t["cpu"] / b["cpu"] for t, b in zip(mine, bare, strict=True))
                    t_cpu = statistics.median(x["cpu"] for x in mine)
                    wall = statistics.median(x["wall"] for x in mine)
                    rss = max(x["rss_mb"] for x in mine)
                    t = mine[-1]
                    found = ", ".join(f"{k} {c:,}" for k, c in t["anomalies"].items()) or "none"
                    print(f"{fmt if who == 'txlab' else '  against':<10} {kind:<6} "
                          f"{t['transactions']:>9,} {path.stat().st_size / 1e6:>8.0f} "
                          f"{b_cpu:>7.2f} {t_cpu:>8.2f} {ratio:>6.2f} "
                          f"{t['transactions'] / t_cpu:>9,.0f} {wall:>7.2f} {rss:>12.0f}  "
                          f"{t['verdict']} ({found})", flush=True)


if __name__ == "__main__":
    main()
