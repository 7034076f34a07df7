// The study page: calibration examples, then one image at a time; every answer is posted before the next
// image is asked for, so nothing is lost when the tab closes.
"use strict";

const $ = (id) => document.getElementById(id);
const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const state = { examples: [], example: 0, current: null, shownAt: 0, busy: false };

function show(id) {
  for (const s of ["intro", "calibration", "judge", "done"]) $(s).hidden = s !== id;
}

function say(message, isError = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

async function api(path, options = {}) {
  const res = await fetch(`/v1/study/${encodeURIComponent(token)}${path}`,
                          { ...options, headers: { "Content-Type": "application/json" } });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

async function start() {
  try {
    state.examples = (await api("/calibration")).examples;
    const first = await api("/next");
    if (first.done) return finish(first);
    if (first.answered > 0) return judge(first);  // a returning participant skips the examples
    $("calibration-count").textContent = state.examples.length;
    show("intro");
  } catch (e) {
    say(e.message, true);
  }
}

function nextExample() {
  if (state.example >= state.examples.length) return loadNext();
  const ex = state.examples[state.example];
  $("example-index").textContent = `${state.example + 1} of ${state.examples.length}`;
  $("example-image").src = ex.data_url;
  $("example-kind").textContent = ex.kind === "real" ? "This one is a real photo." : "This one is generated.";
  state.example += 1;
  show("calibration");
  $("example-next").focus();
}

async function loadNext() {
  try {
    const item = await api("/next");
    if (item.done) return finish(item);
    judge(item);
  } catch (e) {
    say(e.message, true);
  }
}

function judge(item) {
  state.current = item;
  $("image-index").textContent = item.index + 1;
  $("image-total").textContent = item.total;
  $("image").src = item.data_url;
  for (const r of document.querySelectorAll("input[name=quality]")) r.checked = false;
  show("judge");
  state.shownAt = performance.now();
  $("answer-real").focus();
}

async function answer(real) {
  if (!state.current || state.busy) return;
  state.busy = true;
  const q = document.querySelector("input[name=quality]:checked");
  const body = { image: state.current.image, real, quality: q ? Number(q.value) : null,
                 ms: Math.round(performance.now() - state.shownAt) };
  try {
    await api("/answers", { method: "POST", body: JSON.stringify(body) });
    say("");
    await loadNext();
  } catch (e) {
    say(e.message, true);
  } finally {
    state.busy = false;
  }
}

function finish(item) {
  $("done-count").textContent = item.answered;
  show("done");
}

$("start").addEventListener("click", nextExample);
$("example-next").addEventListener("click", nextExample);
$("answer-real").addEventListener("click", () => answer(true));
$("answer-generated").addEventListener("click", () => answer(false));
document.addEventListener("keydown", (e) => {
  if ($("judge").hidden || e.target.tagName === "INPUT") return;
  if (e.key === "r" || e.key === "R") answer(true);
  if (e.key === "g" || e.key === "G") answer(false);
});
start();
