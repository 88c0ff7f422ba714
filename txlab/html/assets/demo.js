/* Demo pages: the step player. Right/Left step, Home/End jump; buttons do the same.
   Each step row has data-step (1-based); the current one has aria-current="step". */
(() => {
  const players = [...document.querySelectorAll(".player")];
  function show(player, k, scroll) {
    const rows = [...player.querySelectorAll("tr[data-step]")];
    const n = rows.length;
    if (!n) return;
    k = Math.max(1, Math.min(n, k));
    player.dataset.at = k;
    for (const r of rows) {
      const s = +r.dataset.step;
      r.classList.toggle("future", s > k);
      if (s === k) r.setAttribute("aria-current", "step"); else r.removeAttribute("aria-current");
    }
    const states = [...player.querySelectorAll("[data-state]")];
    if (states.length) {
      const best = states.filter((s) => +s.dataset.state <= k).pop();
      for (const s of states) s.hidden = s !== best;
    }
    const row = rows[k - 1];
    if (scroll) row.scrollIntoView({ block: "nearest" });
    player.querySelector(".pos").textContent = `Step ${k} of ${n}: ${row.dataset.name}`;
    for (const b of player.querySelectorAll("[data-act]")) {
      const back = b.dataset.act === "first" || b.dataset.act === "prev";
      b.disabled = back ? k === 1 : k === n;
    }
    /* the verdict is the answer: shown once the last step is (without script: always) */
    for (const v of player.querySelectorAll(".reveal")) v.hidden = k < n;
    for (const v of player.querySelectorAll(".reveal-note")) v.hidden = k >= n;
  }
  for (const p of players) {
    show(p, 1);
    p.addEventListener("click", (e) => {
      const act = e.target.closest("[data-act]");
      if (!act) return;
      const k = +p.dataset.at, n = +p.dataset.steps;
      show(p, { first: 1, prev: k - 1, next: k + 1, last: n }[act.dataset.act], true);
      if (act.disabled) p.focus();
    });
  }
  const visible = (el) => el.offsetParent !== null;
  /* a level's tab clicked with the mouse: the arrows then step its player (the caption
     says so), rather than move between the tabs, which keep their keys when focused */
  document.addEventListener("click", (e) => {
    const tab = e.target.closest && e.target.closest('[role="tab"]');
    if (!tab || e.detail === 0) return; /* detail 0: a keyboard "click" */
    const panel = document.getElementById(tab.getAttribute("aria-controls"));
    const p = panel && panel.querySelector(".player");
    if (p) p.focus({ preventScroll: true });
  });
  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    if (t.closest && (t.closest('[role="tablist"]') || t.matches("input, textarea, select"))) return;
    const p = (t.closest && t.closest(".player")) || players.find(visible);
    if (!p || !visible(p)) return;
    const k = +p.dataset.at, n = +p.dataset.steps;
    const to = { ArrowRight: k + 1, ArrowLeft: k - 1, Home: 1, End: n }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    show(p, to, true);
  });
  /* demo --all: show the demo a link points to (and the tab of its player), hide the rest. */
  function follow() {
    const el = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    const sec = el && el.closest(".demo-section");
    for (const s of document.querySelectorAll(".demo-section")) s.classList.toggle("shown", s === sec);
    const panel = el && el.closest('[role="tabpanel"]');
    const tab = panel && document.querySelector(`[aria-controls="${panel.id}"]`);
    if (tab) tab.click();
    if (el) el.scrollIntoView();
  }
  window.addEventListener("hashchange", follow);
  follow();
})();
