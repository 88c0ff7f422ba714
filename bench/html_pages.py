"""How big and how fast are the HTML pages? Figures printed, never asserted.

    .venv/bin/python bench/html_pages.py                  # 10 s bank-transfer, demo --all
    .venv/bin/python bench/html_pages.py --duration 30 --shots docs/img

Runs `txlab run bank-transfer -d SECONDS --html` and `txlab demo --all --html`
(on --dsn / TXLAB_DSN, else a temporary embedded server), then for each page:
its size, the CPU time Python spends building and rendering it (from the same
data, in this process), and in headless Chromium (one browser; --loads times
each, median printed) the time from navigation start to the load event and to
the first contentful paint. Screenshots at 1280x720 go to --shots.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def build_pages(dsn: str, duration: float, folder: Path) -> list[tuple[str, Path, float]]:
    from txlab import report, runner, timeline
    from txlab import scenario as scenarios
    from txlab.html import demo as demo_html
    from txlab.html import run as run_page
    from txlab.interleave import demo, render
    from txlab.settings import RunSettings

    out = []
    found = scenarios.resolve("bank-transfer", ())
    settings = RunSettings(scenario="bank-transfer", seed=1, duration_s=duration,
                           schema="txlab_bench_html")
    result = runner.run(settings, found, dsn)
    t0 = time.process_time()
    html = run_page.page(report.to_dict(result), timeline.attempt_records(result))
    cpu = time.process_time() - t0
    path = folder / "run.html"
    path.write_text(html, encoding="utf-8")
    print(f"run: {len(result.history.attempts):,} attempts in {result.duration_s:.1f} s")
    out.append((f"run bank-transfer -d {duration:g}", path, cpu))

    m = demo.run_matrix(dsn, step_states=True)
    t0 = time.process_time()
    html = demo_html.matrix_page(render.matrix_json(m), [render.to_json(r) for r in m.results])
    cpu = time.process_time() - t0
    path = folder / "demo-all.html"
    path.write_text(html, encoding="utf-8")
    out.append(("demo --all", path, cpu))
    return out


def measure(pages, loads: int, shots: Path | None) -> None:
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("TXLAB_CHROMIUM") or shutil.which("chromium")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="txlab-bench-chromium-"), executable_path=exe, headless=True,
            args=FLAGS, viewport={"width": 1280, "height": 720})
        try:
            for name, path, cpu in pages:
                load, paint = [], []
                for _ in range(loads):
                    page = ctx.new_page()
                    page.goto(path.resolve().as_uri())
                    t = page.evaluate("""() => new Promise((done) => {
                        const n = performance.getEntriesByType('navigation')[0];
                        new PerformanceObserver((list) => {
                          const p = list.getEntriesByName('first-contentful-paint')[0];
                          if (p) done([n.loadEventEnd, p.startTime]);
                        }).observe({ type: 'paint', buffered: true }); })""")
                    load.append(t[0])
                    paint.append(t[1])
                    if shots and not load[1:]:
                        page.screenshot(path=str(shots / f"{path.stem}.png"))
                    page.close()
                size = path.stat().st_size
                print(f"{name:<28} {size / 1024:8.0f} KiB   Python build+render {cpu:5.2f} s CPU   "
                      f"Chromium: load event {statistics.median(load):6.0f} ms, first contentful "
                      f"paint {statistics.median(paint):6.0f} ms (median of {loads})   {path}")
        finally:
            ctx.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of bank-transfer")
    ap.add_argument("--loads", type=int, default=5, help="page loads per page")
    ap.add_argument("--out", type=Path, help="folder for the pages (default: a temporary one)")
    ap.add_argument("--shots", type=Path, help="folder for screenshots")
    ap.add_argument("--dsn", help="PostgreSQL URL (default: TXLAB_DSN, else embedded)")
    args = ap.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="txlab-bench-html-"))
    folder.mkdir(parents=True, exist_ok=True)
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    from txlab.testing import postgres

    dsn = args.dsn or os.environ.get("TXLAB_DSN")
    if dsn:
        pages = build_pages(dsn, args.duration, folder)
    else:
        with postgres() as embedded:
            pages = build_pages(embedded, args.duration, folder)
    measure(pages, args.loads, args.shots)


if __name__ == "__main__":
    main()
