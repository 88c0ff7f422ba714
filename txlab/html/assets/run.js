/* The run page: mark tooltips, keyboard moves between marks, zoom, anomaly highlight. */
(() => {
  const tl = TX.data.timeline;
  const marks = new Map(tl.marks.map((m) => [String(m.id), m]));
  const sec = (ms) => (ms / 1000).toFixed(3) + " s";
  const val = (v) => (typeof v === "string" ? v : JSON.stringify(v));
  const op = (o) => o[0] === "pr"
    ? `pr ${o[1]} -> [${o[2].map((r) => `${r[0]} v${r[1]}`).join(", ")}${o[3] ? `, ${o[3]} more` : ""}]`
    : `${o[0]} ${o[1]} v${o[2]} = ${val(o[3])}`;
  TX.tips.push((el) => {
    if (el.classList.contains("mark")) {
      const m = marks.get(el.dataset.id);
      if (!m) return null;
      const c = tl.classes[m.c];
      const head = `T${m.id}: worker ${m.w}, transaction ${m.txn}` + (m.try ? `, retry ${m.try}` : "");
      const what = c.label + (m.sqlstate ? ` (SQLSTATE ${m.sqlstate})` : "") + (m.reason ? `: ${m.reason}` : "")
        + (m.error ? `\n${m.error}` : "");
      const ops = m.ops.map(op).join("\n") + (m.more_ops ? `\n... ${m.more_ops} more ops` : "");
      return `${head}\n${what}\n${(m.e - m.s).toFixed(3)} ms: ${sec(m.s)} → ${sec(m.e)}\n${ops}`;
    }
    if (el.classList.contains("bin")) {
      const lines = el.dataset.counts.split(",").map((p) => {
        const [c, n] = p.split(":");
        return `${tl.classes[c].label}: ${n}`;
      });
      return `worker ${el.dataset.w}, completed ${sec(+el.dataset.s)} – ${sec(+el.dataset.e)}\n${lines.join("\n")}`;
    }
    return null;
  });

  /* Zoom: every svg.zoomable re-places its .z elements (data-s, data-e in ms). */
  const svgs = [...document.querySelectorAll("svg.zoomable")];
  const form = document.querySelector("form.zoom");
  const full = [0, tl.duration_ms || 1];
  let view = full.slice();
  const step = (span) => {
    const raw = span / 6, mag = 10 ** Math.floor(Math.log10(raw));
    return [1, 2, 5, 10].map((m) => m * mag).find((s) => raw <= s);
  };
  function zoomTo(a, b) {
    a = Math.max(full[0], a); b = Math.min(full[1], b);
    if (!(b - a > 0.01)) return;
    view = [a, b];
    for (const svg of svgs) {
      const left = +svg.dataset.left, plot = +svg.dataset.plot, min = +svg.dataset.min;
      const k = plot / (b - a);
      for (const el of svg.querySelectorAll(".z")) {
        const s = +el.dataset.s, e = +el.dataset.e;
        if (e < a || s > b) { el.style.display = "none"; continue; }
        el.style.display = "";
        el.setAttribute("x", (left + (Math.max(s, a) - a) * k).toFixed(1));
        el.setAttribute("width", Math.max(min, (Math.min(e, b) - Math.max(s, a)) * k).toFixed(1));
      }
      const axis = svg.querySelector(".axis");
      const y = +axis.dataset.y, h = +axis.dataset.h, st = step((b - a) / 1000) * 1000;
      const digits = st >= 1000 ? 0 : st >= 100 ? 1 : st >= 10 ? 2 : 3;
      let out = "";
      for (let t = Math.ceil(a / st) * st; t <= b + 1e-9; t += st) {
        const x = (left + (t - a) * k).toFixed(1);
        out += `<line x1="${x}" x2="${x}" y1="${y}" y2="${y + h}"/><text x="${x}" y="${y - 4}">${(t / 1000).toFixed(digits)} s</text>`;
      }
      axis.innerHTML = out;
    }
    if (form) { form.a.value = (a / 1000).toFixed(3); form.b.value = (b / 1000).toFixed(3); }
  }
  if (form) {
    form.addEventListener("click", (e) => {
      const act = e.target.dataset && e.target.dataset.zoom;
      if (!act) return;
      const [a, b] = view, span = b - a, mid = (a + b) / 2;
      if (act === "apply") zoomTo(+form.a.value * 1000, +form.b.value * 1000);
      else if (act === "in") zoomTo(mid - span / 4, mid + span / 4);
      else if (act === "out") zoomTo(mid - span, mid + span);
      else if (act === "left") zoomTo(Math.max(0, a - span / 2), Math.max(0, a - span / 2) + span);
      else if (act === "right") zoomTo(Math.min(full[1], b + span / 2) - span, Math.min(full[1], b + span / 2));
      else if (act === "reset") zoomTo(full[0], full[1]);
    });
  }

  /* Drag across the timeline to zoom into that window. */
  const svg = document.getElementById("timeline");
  let at = null;  // the mark that has the timeline's one tab stop
  const visible = (el) => el.style.display !== "none";
  const go = (el) => {
    if (!el) return;
    if (at) at.tabIndex = -1;
    at = el; el.tabIndex = 0; el.focus();
  };
  if (svg) {
    const brush = svg.querySelector(".brush");
    const left = +svg.dataset.left, plot = +svg.dataset.plot;
    const sx = (ev) => { const p = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(svg.getScreenCTM().inverse()); return Math.max(left, Math.min(left + plot, p.x)); };
    let from = null;
    svg.addEventListener("mousedown", (ev) => { from = sx(ev); brush.setAttribute("x", from); brush.setAttribute("width", 0); brush.setAttribute("height", svg.viewBox.baseVal.height); });
    svg.addEventListener("mousemove", (ev) => {
      if (from === null) return;
      const x = sx(ev);
      brush.setAttribute("x", Math.min(from, x)); brush.setAttribute("width", Math.abs(x - from));
      brush.setAttribute("visibility", "visible");
    });
    window.addEventListener("mouseup", (ev) => {
      if (from === null) return;
      const x = sx(ev), a = Math.min(from, x), b = Math.max(from, x);
      from = null; brush.setAttribute("visibility", "hidden");
      if (b - a < 6) return;
      const [va, vb] = view, k = (vb - va) / plot;
      zoomTo(va + (a - left) * k, va + (b - left) * k);
    });

    /* Keyboard: one tab stop; arrows move between marks (roving tabindex). */
    const lanes = new Map();
    for (const el of svg.querySelectorAll(".mk")) {
      const w = el.dataset.w;
      if (!lanes.has(w)) lanes.set(w, []);
      lanes.get(w).push(el);
    }
    for (const l of lanes.values()) l.sort((x, y) => x.dataset.s - y.dataset.s);
    const order = [...lanes.keys()];
    for (const el of svg.querySelectorAll(".mk")) el.tabIndex = -1;  // focusable, one tab stop
    at = svg.querySelector(".mk");
    if (at) at.tabIndex = 0;
    svg.addEventListener("keydown", (e) => {
      const el = e.target.closest(".mk");
      if (!el) return;
      const lane = lanes.get(el.dataset.w).filter(visible), i = lane.indexOf(el);
      let next = null;
      if (e.key === "ArrowRight") next = lane[i + 1];
      else if (e.key === "ArrowLeft") next = lane[i - 1];
      else if (e.key === "Home") next = lane[0];
      else if (e.key === "End") next = lane[lane.length - 1];
      else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        const j = order.indexOf(el.dataset.w) + (e.key === "ArrowDown" ? 1 : -1);
        const other = (lanes.get(order[j]) || []).filter(visible), s = +el.dataset.s;
        next = other.reduce((best, x) => (!best || Math.abs(x.dataset.s - s) < Math.abs(best.dataset.s - s) ? x : best), null);
      } else return;
      e.preventDefault();
      go(next);
    });
  }

  /* Choosing an anomaly example highlights its transactions and zooms to them. */
  for (const btn of document.querySelectorAll(".hl-btn")) {
    btn.addEventListener("click", () => {
      const on = btn.getAttribute("aria-pressed") !== "true";
      for (const b of document.querySelectorAll(".hl-btn")) b.setAttribute("aria-pressed", "false");
      for (const el of document.querySelectorAll(".mark.hl")) el.classList.remove("hl");
      if (!svg) return;
      svg.classList.toggle("dim", on);
      if (!on) { zoomTo(full[0], full[1]); return; }
      btn.setAttribute("aria-pressed", "true");
      const ids = btn.dataset.ids.split(" ");
      const found = ids.map((id) => svg.querySelector(`.mark[data-id="${id}"]`)).filter(Boolean);
      for (const el of found) el.classList.add("hl");
      if (found.length) {
        const a = Math.min(...found.map((el) => +el.dataset.s)), b = Math.max(...found.map((el) => +el.dataset.e));
        const pad = Math.max((b - a) * 0.5, 5);
        zoomTo(a - pad, b + pad);
        svg.scrollIntoView({ block: "center" });
        go(found[0]);
      }
    });
  }
})();
