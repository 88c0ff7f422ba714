/* txlab pages: shared helpers. No libraries; nothing is fetched. */
"use strict";
document.documentElement.classList.add("js");
const TX = {
  data: JSON.parse(document.getElementById("txlab-data").textContent),
  tips: [],  // functions element -> text or null, registered by each page's script
  tip: document.getElementById("tip"),
  current: null,
  tipText(el) {
    for (const f of TX.tips) { const t = f(el); if (t) return t; }
    return null;
  },
  show(el) {
    const text = TX.tipText(el);
    if (!text) return;
    TX.current = el;
    TX.tip.textContent = text;
    TX.tip.hidden = false;
    const r = el.getBoundingClientRect(), t = TX.tip.getBoundingClientRect();
    let x = r.left + r.width / 2 - t.width / 2, y = r.bottom + 8;
    if (y + t.height > window.innerHeight) y = r.top - t.height - 8;
    x = Math.max(4, Math.min(x, window.innerWidth - t.width - 4));
    TX.tip.style.left = x + "px";
    TX.tip.style.top = Math.max(4, y) + "px";
  },
  hide(el) { if (!el || el === TX.current) { TX.tip.hidden = true; TX.current = null; } },
};
for (const [on, off] of [["mouseover", "mouseout"], ["focusin", "focusout"]]) {
  document.addEventListener(on, (e) => { const el = e.target.closest && e.target.closest("[data-tip], .mk"); if (el) TX.show(el); });
  document.addEventListener(off, (e) => { const el = e.target.closest && e.target.closest("[data-tip], .mk"); if (el) TX.hide(el); });
}
document.addEventListener("keydown", (e) => { if (e.key === "Escape") TX.hide(); });
TX.tips.push((el) => el.dataset.tip || null);

/* Tabs: role=tablist > role=tab[aria-controls]; arrows, Home and End move between them. */
for (const list of document.querySelectorAll('[role="tablist"]')) {
  const tabs = [...list.querySelectorAll('[role="tab"]')];
  const select = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", on);
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    }
  };
  list.addEventListener("click", (e) => { const t = e.target.closest('[role="tab"]'); if (t) select(t); });
  list.addEventListener("keydown", (e) => {
    const i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    const j = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (j === undefined) return;
    e.preventDefault(); e.stopPropagation();
    const t = tabs[(j + tabs.length) % tabs.length];
    select(t); t.focus();
  });
}
