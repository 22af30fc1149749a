// batchgen catalog page: renders one page of jobs at a time from the data
// (embedded, or chunk files each loaded by a script element). Every value from the
// catalog goes into the DOM as text (textContent) or as an attribute set by
// property: never as markup.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("batchgen-config").textContent);
  const chunks = new Array(cfg.chunks);
  const waiting = new Map();
  const $ = (id) => document.getElementById(id);
  const main = $("jobs");
  const where = $("where");

  if (cfg.embedded) {
    chunks[0] = JSON.parse(document.getElementById("batchgen-data").textContent);
  }

  // Called by each chunk file.
  window.batchgenChunk = function (n, jobs) {
    if (!Number.isInteger(n) || n < 0 || n >= cfg.chunks || chunks[n] || !Array.isArray(jobs)) {
      return;
    }
    chunks[n] = jobs;
    const done = waiting.get(n) || [];
    waiting.delete(n);
    done.forEach((f) => f(null));
  };

  function chunkUrl(n) {
    return cfg.dir + "/" + cfg.generation + "-" + String(n).padStart(4, "0") + ".js";
  }

  function load(n) {
    return new Promise((resolve, reject) => {
      if (chunks[n]) return resolve();
      const finish = (err) => (err ? reject(err) : resolve());
      if (waiting.has(n)) return waiting.get(n).push(finish);
      waiting.set(n, [finish]);
      const s = document.createElement("script");
      s.src = chunkUrl(n);
      s.onerror = () => {
        const done = waiting.get(n) || [];
        waiting.delete(n);
        done.forEach((f) => f(new Error("cannot load " + chunkUrl(n))));
      };
      document.head.appendChild(s);
    });
  }

  function loadRange(from, to, progress) {
    let loaded = 0;
    const all = [];
    for (let n = from; n <= to; n++) {
      all.push(load(n).then(() => progress && progress(++loaded, to - from + 1)));
    }
    return Promise.all(all);
  }

  // The view lives in the fragment: #status=failed&q=rain&sort=title&page=2,
  // and the quality filters #review=1 (jobs with a rejected take) and
  // #picks=1 (each job's picked take).
  function flag(p, name) {
    return p.has(name) && p.get(name) !== "0";
  }

  function readState() {
    const p = new URLSearchParams(location.hash.slice(1));
    const statuses = ["all", "complete", "failed", "running", "downloaded", "remote"];
    const status = statuses.includes(p.get("status")) ? p.get("status") : "all";
    return {
      status: status,
      review: flag(p, "review"),
      picks: flag(p, "picks"),
      q: (p.get("q") || "").trim(),
      sort: p.get("sort") === "title" ? "title" : "line",
      page: Math.max(1, parseInt(p.get("page"), 10) || 1),
    };
  }

  function writeState(s) {
    const p = new URLSearchParams();
    if (s.status !== "all") p.set("status", s.status);
    if (s.review) p.set("review", "1");
    if (s.picks) p.set("picks", "1");
    if (s.q) p.set("q", s.q);
    if (s.sort !== "line") p.set("sort", s.sort);
    if (s.page > 1) p.set("page", String(s.page));
    const hash = "#" + p.toString();
    if (hash !== location.hash && !(hash === "#" && location.hash === "")) {
      location.hash = hash;
    } else {
      render();
    }
  }

  function statusMatches(clip, status) {
    switch (status) {
      case "all": return true;
      case "running": return clip.status === "new" || clip.status === "text" || clip.status === "first";
      case "downloaded": return clip.local;
      case "remote": return clip.status === "complete" && !clip.local;
      default: return clip.status === status;
    }
  }

  function textMatches(job, clip, words) {
    if (!words.length) return true;
    const hay = [job.key, job.task, clip.id, clip.title, clip.style, clip.model, clip.error, clip.reasons || ""]
      .join("\n").toLowerCase();
    return words.every((w) => hay.includes(w));
  }

  // A job's clips under the picks filter: its picked take, or every clip
  // of a job with no pick (none of its takes judged).
  function picked(job, clips, picks) {
    if (!picks || !job.clips.some((c) => c.pick)) return clips;
    return clips.filter((c) => c.pick);
  }

  // Whether a job's shown clips put it in the review view: one is rejected.
  function needsReview(clips) {
    return clips.some((c) => c.verdict === "rejected");
  }

  // Every job with its matching clips, in the chosen order.
  function filtered(state) {
    const words = state.q.toLowerCase().split(/\s+/).filter(Boolean);
    const out = [];
    for (const chunk of chunks) {
      for (const job of chunk) {
        const matching = job.clips.filter((c) => statusMatches(c, state.status) && textMatches(job, c, words));
        const clips = picked(job, matching, state.picks);
        if (state.review && !needsReview(clips)) continue;
        if (clips.length) out.push({ job: job, clips: clips });
      }
    }
    if (state.sort === "title") {
      const title = (v) => (v.clips[0].title || "").toLowerCase();
      out.sort((a, b) => title(a).localeCompare(title(b)) || a.job.n - b.job.n);
    }
    return out;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null && text !== "") e.textContent = String(text);
    return e;
  }

  function duration(secs) {
    if (typeof secs !== "number") return "";
    const s = Math.round(secs);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  // A level to one decimal, with a true minus sign: "\u221214.2 LUFS".
  function level(value, unit) {
    if (typeof value !== "number" || !isFinite(value)) return "";
    const r = Math.round(value * 10) / 10;
    return (r < 0 ? "\u2212" : "") + Math.abs(r).toFixed(1) + " " + unit;
  }

  function clipCard(job, clip) {
    const card = el("article", "clip");
    card.dataset.clip = "";
    card.dataset.status = clip.status;
    card.dataset.key = job.key;
    const cover = el("div", "cover", "\u266a");
    if (clip.image) {
      const img = el("img");
      img.loading = "lazy";
      img.alt = "";
      img.src = clip.image;
      img.addEventListener("error", () => { cover.textContent = "\u266a"; });
      cover.textContent = "";
      cover.appendChild(img);
    }
    card.appendChild(cover);
    const body = el("div", "body");
    const title = el("h3", "title", clip.title || "(untitled)");
    title.dataset.title = "";
    body.appendChild(title);
    const badges = el("div", "badges");
    const stClass = ["new", "text", "first"].includes(clip.status) ? "st-running" : "st-" + clip.status;
    const badge = el("span", "badge " + stClass, clip.status);
    badge.dataset.badge = clip.status;
    badges.appendChild(badge);
    badges.appendChild(el("span", "badge", clip.i ? "take " + clip.i : "task"));
    if (clip.status === "complete") {
      badges.appendChild(el("span", "badge " + (clip.local ? "st-local" : ""), clip.local ? "downloaded" : "remote"));
    }
    if (clip.verdict === "kept" || clip.verdict === "rejected") {
      card.dataset.verdict = clip.verdict;
      const v = el("span", "badge st-" + clip.verdict, clip.verdict);
      v.dataset.verdict = clip.verdict;
      badges.appendChild(v);
    }
    if (clip.pick) {
      card.dataset.pick = "";
      const p = el("span", "badge st-pick", "pick");
      p.dataset.pick = "";
      badges.appendChild(p);
    }
    body.appendChild(badges);
    if (clip.reasons) {
      const why = el("p", "reasons", clip.reasons);
      why.dataset.reasons = "";
      body.appendChild(why);
    }
    const meta = [clip.style, clip.model, duration(clip.dur)].filter(Boolean).join(" · ");
    if (meta) body.appendChild(el("div", "meta", meta));
    const measured = [
      typeof clip.measured === "number" ? "measured " + duration(clip.measured) : "",
      level(clip.lufs, "LUFS"),
      level(clip.dbtp, "dBTP"),
    ].filter(Boolean).join(" · ");
    if (measured) {
      const m = el("div", "meta measure", measured);
      m.dataset.measure = "";
      body.appendChild(m);
    }
    if (clip.status === "complete" && clip.audio) {
      const audio = el("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = clip.audio;
      audio.dataset.player = clip.local ? "local" : "remote";
      audio.setAttribute("aria-label", "play " + (clip.title || job.key));
      body.appendChild(audio);
    }
    if (clip.error) {
      const err = el("p", "error", clip.error);
      err.dataset.error = "";
      body.appendChild(err);
    }
    card.appendChild(body);
    return card;
  }

  function jobSection(job, clips) {
    const sec = el("section", "job");
    sec.dataset.job = job.key;
    const head = el("header");
    head.appendChild(el("span", "ord", "#" + job.n));
    head.appendChild(el("span", "key", job.key));
    head.appendChild(el("span", "task", job.task));
    sec.appendChild(head);
    const takes = el("div", "takes");
    clips.forEach((c) => takes.appendChild(clipCard(job, c)));
    sec.appendChild(takes);
    return sec;
  }

  let current = readState();
  let pages = 1;
  let token = 0;

  function show(items, state, total, clipsShown) {
    pages = Math.max(1, Math.ceil(total / cfg.perPage));
    const frag = document.createDocumentFragment();
    items.forEach((v) => frag.appendChild(jobSection(v.job, v.clips)));
    if (!items.length) frag.appendChild(el("p", "note", "No clip matches this view."));
    main.replaceChildren(frag);
    const first = total ? (state.page - 1) * cfg.perPage + 1 : 0;
    const last = Math.min(total, state.page * cfg.perPage);
    let text = "page " + state.page + " of " + pages + " · jobs " + first + "\u2013" + last + " of " + total;
    if (clipsShown !== null) text += " · " + clipsShown + " matching clips";
    where.textContent = text;
    $("prev").disabled = state.page <= 1;
    $("next").disabled = state.page >= pages;
    document.body.dataset.ready = "1";
  }

  function fail(err) {
    where.textContent = String(err.message || err);
    document.body.dataset.ready = "error";
  }

  function render() {
    const state = readState();
    current = state;
    $("status").value = state.status;
    if ($("review")) $("review").checked = state.review;
    if ($("picks")) $("picks").checked = state.picks;
    $("sort").value = state.sort;
    if (document.activeElement !== $("q")) $("q").value = state.q;
    const mine = ++token;
    // The picks filter alone hides no job (a job without a pick shows all
    // its clips), so it pages like the plain view, from the chunks needed.
    const plain = state.status === "all" && !state.review && !state.q && state.sort === "line";
    if (plain) {
      state.page = Math.min(state.page, Math.max(1, Math.ceil(cfg.entries / cfg.perPage)));
      const start = (state.page - 1) * cfg.perPage;
      const end = Math.min(cfg.entries, start + cfg.perPage);
      const from = Math.floor(start / cfg.perChunk);
      const to = Math.max(from, Math.floor(Math.max(start, end - 1) / cfg.perChunk));
      loadRange(from, Math.min(to, cfg.chunks - 1)).then(() => {
        if (mine !== token) return;
        const items = [];
        for (let i = start; i < end; i++) {
          const job = chunks[Math.floor(i / cfg.perChunk)][i % cfg.perChunk];
          if (job) items.push({ job: job, clips: picked(job, job.clips, state.picks) });
        }
        show(items, state, cfg.entries, null);
      }, fail);
      return;
    }
    where.textContent = "loading the catalog\u2026";
    loadRange(0, cfg.chunks - 1, (n, all) => {
      if (mine === token) where.textContent = "loading the catalog\u2026 " + n + "/" + all;
    }).then(() => {
      if (mine !== token) return;
      const all = filtered(state);
      state.page = Math.min(state.page, Math.max(1, Math.ceil(all.length / cfg.perPage)));
      const start = (state.page - 1) * cfg.perPage;
      const shown = all.slice(start, start + cfg.perPage);
      const clipsShown = all.reduce((n, v) => n + v.clips.length, 0);
      show(shown, state, all.length, clipsShown);
    }, fail);
  }

  function change(patch) {
    writeState(Object.assign({}, current, { page: 1 }, patch));
  }

  $("controls").addEventListener("submit", (e) => e.preventDefault());
  $("status").addEventListener("change", (e) => change({ status: e.target.value }));
  $("sort").addEventListener("change", (e) => change({ sort: e.target.value }));
  ["review", "picks"].forEach((name) => {
    if ($(name)) $(name).addEventListener("change", (e) => change({ [name]: e.target.checked }));
  });
  let typing = 0;
  $("q").addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => change({ q: e.target.value.trim() }), 250);
  });
  $("prev").addEventListener("click", () => writeState(Object.assign({}, current, { page: Math.max(1, current.page - 1) })));
  $("next").addEventListener("click", () => writeState(Object.assign({}, current, { page: Math.min(pages, current.page + 1) })));
  document.addEventListener("keydown", (e) => {
    const inField = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement;
    if (e.key === "Escape" && e.target === $("q")) {
      $("q").value = "";
      change({ q: "" });
    } else if (inField || e.ctrlKey || e.metaKey || e.altKey) {
      return;
    } else if (e.key === "/") {
      e.preventDefault();
      $("q").focus();
    } else if (e.key === "[" && !$("prev").disabled) {
      $("prev").click();
    } else if (e.key === "]" && !$("next").disabled) {
      $("next").click();
    }
  });
  // One player at a time: starting one pauses the others.
  document.addEventListener("play", (e) => {
    document.querySelectorAll("audio").forEach((a) => { if (a !== e.target) a.pause(); });
  }, true);
  window.addEventListener("hashchange", render);
  render();
})();
