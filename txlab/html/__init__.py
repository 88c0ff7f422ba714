"""Self-contained HTML pages: one file per run, demo, matrix and check; no network.

Each page module builds page data from the same dicts `--format json` prints (plus
what the page needs from the shared data layer, e.g. txlab.timeline) and renders
ONE HTML string with its styles, scripts and data inline:

    html.run.page(report.to_dict(result), timeline.attempt_records(result))
    html.demo.page(interleave.render.to_json(demo_result))
    html.demo.matrix_page(render.matrix_json(m), [render.to_json(r) for r in m.results])
    html.matrix.page(matrix.to_dicts(rows), server_version)
    html.check.page(check_result.to_dict())
"""
