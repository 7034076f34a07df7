// jewelgan studio: plain JS over the /v1 API. Every image request sends the same fields the CLI takes,
// so a seed seen here gives the same image from `jewelgan generate --seed`.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, models: [], model: null, results: [], selected: null, job: null };

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (!res.ok) {
    let message = res.status + " " + res.statusText;
    try {
      const body = await res.json();
      message = body.error + (body.choices ? " (choose from: " + body.choices.join(", ") + ")" : "");
    } catch (_) { /* not JSON: keep the status line */ }
    if (res.status === 503 || res.status === 429) {
      message += "; retry in " + (res.headers.get("Retry-After") || "a few") + " s";
    }
    throw new Error(message);
  }
  return res;
}

// each panel reports in its own status line (generate: #status; the selected piece, your own piece, try-on
// and bulk jobs: #detail-status, #edit-status, #cutout-status, #tryon-status, #bulk-status), so an error shows where it happened
function say(message, isError = false, where = "status") {
  $(where).textContent = message;
  $(where).classList.toggle("error", isError);
}

// a panel at work: its status line counts the seconds until stop() (long answers: an edit, a try-on)
function busy(where, message) {
  const start = Date.now();
  const panel = $(where).closest("section, form");
  if (panel) panel.setAttribute("aria-busy", "true");
  say(message, false, where);
  const timer = setInterval(() => say(`${message} ${Math.round((Date.now() - start) / 1000)} s`, false, where), 1000);
  return () => {
    clearInterval(timer);
    if (panel) panel.removeAttribute("aria-busy");
  };
}

// ---------------------------------------------------------------- models and attribute controls
let loading = null;  // the models being loaded: an action started meanwhile waits for them

function loadModels() {
  loading = loadModelsNow();
  return loading;
}

// before any action: the models are loaded (waiting for a load under way, e.g. the one a just-typed API key
// started when the click took the focus from its field), or the user is told what is missing
async function ready(where = "status") {
  if (loading) await loading.catch(() => {});
  if (!state.model && (!state.info || !state.info.auth || $("api-key").value.trim())) {
    await loadModels().catch((e) => say(e.message, true, where));
  }
  if (!state.model) {
    say(state.info && state.info.auth && !$("api-key").value.trim()
      ? "This server needs an API key: enter it above." : "The models are not loaded yet; try again.", true, where);
    return false;
  }
  return true;
}

async function loadModelsNow() {
  state.info = await (await fetch("/v1/info")).json();
  $("key-row").hidden = !state.info.auth;
  $("count").max = state.info.caps.max_n;
  $("job-n").max = state.info.caps.max_job_n;
  if (state.info.auth && !$("api-key").value.trim()) {
    state.model = null;
    say("This server needs an API key: enter it above.");
    return;
  }
  const body = await (await api("/v1/models")).json();
  state.models = body.models;
  $("model").replaceChildren(...body.models.map((m) => new Option(`${m.name} (${m.sizes.join(", ")} px)`, m.name)));
  $("model").value = body.default;
  chooseModel(body.default);
  say(`Ready: ${body.models.length} model(s).`);
}

function chooseModel(name) {
  state.model = state.models.find((m) => m.name === name);
  const box = $("attributes");
  box.replaceChildren(Object.assign(document.createElement("legend"), { textContent: "Attributes" }));
  for (const [attr, values] of Object.entries(state.model.attributes)) {
    const field = document.createElement("div");
    field.className = "field";
    const id = "attr-" + attr;
    const label = Object.assign(document.createElement("label"), { htmlFor: id, textContent: pretty(attr) });
    const select = Object.assign(document.createElement("select"), { id, name: attr });
    select.dataset.attribute = attr;
    select.append(new Option("any", ""), ...values.map((v) => new Option(pretty(v), v)));
    field.append(label, select);
    box.append(field);
  }
  $("edit-attribute").replaceChildren(...Object.keys(state.model.attributes).map((a) => new Option(pretty(a), a)));
  $("edit-attribute").value = "metal" in state.model.attributes ? "metal" : Object.keys(state.model.attributes)[0];
  $("edit-source").replaceChildren(new Option("read it for me", ""),
                                   ...(state.model.attributes.metal || []).map((v) => new Option(pretty(v), v)));
  $("edit-reference-metal").replaceChildren(...(state.model.attributes.metal || []).map((v) => new Option(pretty(v), v)));
  $("transparent").disabled = !state.model.alpha;
  if (!state.model.alpha) $("transparent").checked = false;
}

const pretty = (s) => s.replaceAll("_", " ");

function fixedAttributes() {
  const out = {};
  for (const select of document.querySelectorAll("#attributes select")) {
    if (select.value) out[select.dataset.attribute] = select.value;
  }
  return out;
}

// the grid shows the largest size up to 256 px; a selected piece and every download use the largest there is
function gridSize() {
  const fit = state.model.sizes.filter((s) => s <= 256);
  return fit.length ? Math.max(...fit) : Math.min(...state.model.sizes);
}

function largestSize() {
  return Math.max(...state.model.sizes);
}

function common() {
  return {
    model: state.model.name, truncation: Number($("truncation").value), transparent: $("transparent").checked,
    attributes: fixedAttributes(), size: gridSize(),
  };
}

// ---------------------------------------------------------------- generate and the result grid
async function generate(event) {
  event.preventDefault();
  if (!(await ready())) return;
  const n = Math.max(1, Math.min(Number($("count").value) || 1, state.info.caps.max_n));
  const request = { ...common(), n, seed: Number($("seed").value) || 0, output: "json" };
  $("generate").disabled = true;
  say(`Generating ${n}…`);
  try {
    const body = await (await api("/v1/generate", { method: "POST", body: JSON.stringify(request) })).json();
    state.results = body.images.map((im) => ({ ...im, request }));
    showGrid();
    say(`${n} image(s), seeds ${request.seed}–${request.seed + n - 1}. Select one for its variants.`);
  } catch (e) {
    say(e.message, true);
  } finally {
    $("generate").disabled = false;
  }
}

function describe(attributes) {
  return Object.entries(attributes).filter(([, v]) => v).map(([k, v]) => `${pretty(k)}: ${pretty(v)}`).join(", ");
}

function showGrid() {
  const tiles = state.results.map((item, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "tile" + (item.request.transparent ? " checker" : "");
    button.setAttribute("aria-pressed", "false");
    button.dataset.index = i;
    const img = Object.assign(document.createElement("img"), {
      src: item.data_url, alt: `seed ${item.seed}: ${describe(item.attributes)}`,
    });
    button.append(img);
    button.addEventListener("click", () => select(i));
    return button;
  });
  $("grid").replaceChildren(...tiles);
}

function select(i) {
  state.selected = state.results[i];
  for (const tile of document.querySelectorAll(".tile")) {
    tile.setAttribute("aria-pressed", String(Number(tile.dataset.index) === i));
  }
  const item = state.selected;
  $("detail").hidden = false;
  $("detail-seed").textContent = item.seed;
  $("detail-image").src = item.data_url;
  $("detail-image").alt = `seed ${item.seed}: ${describe(item.attributes)}`;
  $("detail-image").className = item.request.transparent ? "checker" : "";
  $("detail-attributes").replaceChildren(...Object.entries(item.attributes).flatMap(([k, v]) => [
    Object.assign(document.createElement("dt"), { textContent: pretty(k) }),
    Object.assign(document.createElement("dd"), { textContent: v ? pretty(v) : "—" }),
  ]));
  const ext = item.data_url.slice(11, item.data_url.indexOf(";"));
  $("download-png").href = item.data_url;
  $("download-png").download = `jewelgan-${item.seed}.${ext}`;
  $("download-png").textContent = `Download ${ext.toUpperCase()}`;
  $("download-cutout").disabled = !state.model.alpha;
  if (largestSize() > item.request.size) showLarge(item);
  $("variant-buttons").replaceChildren(...Object.keys(state.model.attributes).map((attr) => {
    const b = Object.assign(document.createElement("button"), {
      type: "button", textContent: `This piece in every ${pretty(attr)}`,
    });
    b.dataset.attribute = attr;
    b.addEventListener("click", () => variants(attr));
    return b;
  }));
  $("interp-to").replaceChildren(...state.results.filter((r) => r !== item)
    .map((r) => new Option(`seed ${r.seed}`, r.seed)));
  $("interpolate").disabled = state.results.length < 2;
  $("strip-title").textContent = "";
  $("strip").replaceChildren();
  $("detail").focus();
}

// the piece exactly as drawn: the request's fixed attributes and truncation, the image's seed
function pieceRequest(item) {
  return { model: item.request.model, truncation: item.request.truncation, transparent: item.request.transparent,
           attributes: item.request.attributes, output: "json", size: item.request.size };
}

// the selected piece at the model's largest size: the detail view and its download
async function showLarge(item) {
  const size = largestSize();
  try {
    const request = { ...pieceRequest(item), size, n: 1, seed: item.seed };
    const body = await (await api("/v1/generate", { method: "POST", body: JSON.stringify(request) })).json();
    if (state.selected !== item) return;  // another piece was selected meanwhile
    const large = body.images[0].data_url;
    $("detail-image").src = large;
    $("download-png").href = large;
    $("download-png").download = `jewelgan-${item.seed}-${size}px.${large.slice(11, large.indexOf(";"))}`;
  } catch (e) {
    say(e.message, true, "detail-status");
  }
}

async function variants(attribute) {
  const item = state.selected;
  say(`Drawing seed ${item.seed} in every ${pretty(attribute)}…`, false, "detail-status");
  try {
    const body = await (await api("/v1/variants", {
      method: "POST", body: JSON.stringify({ ...pieceRequest(item), seed: item.seed, attribute }),
    })).json();
    showStrip(`Seed ${item.seed} in every ${pretty(attribute)}`, body.images.map((im) => [im, pretty(im.value)]),
              item.request.transparent);
    say("", false, "detail-status");
  } catch (e) {
    say(e.message, true, "detail-status");
  }
}

async function interpolate() {
  const item = state.selected;
  const to = Number($("interp-to").value);
  say(`Interpolating seed ${item.seed} → ${to}…`, false, "detail-status");
  try {
    const request = { ...pieceRequest(item), seed_a: item.seed, seed_b: to, steps: 8 };
    const body = await (await api("/v1/interpolate", { method: "POST", body: JSON.stringify(request) })).json();
    showStrip(`Seed ${item.seed} → ${to}`, body.images.map((im) => [im, "t = " + im.t.toFixed(2)]),
              item.request.transparent);
    say("", false, "detail-status");
  } catch (e) {
    say(e.message, true, "detail-status");
  }
}

function showStrip(title, entries, transparent) {
  $("strip-title").textContent = title;
  $("strip").replaceChildren(...entries.map(([im, caption]) => {
    const fig = document.createElement("figure");
    const img = Object.assign(document.createElement("img"), { src: im.data_url, alt: `${title}: ${caption}` });
    if (transparent) img.className = "checker";
    fig.append(img, Object.assign(document.createElement("figcaption"), { textContent: caption }));
    return fig;
  }));
}

async function downloadCutout() {
  const item = state.selected;
  try {
    const request = { ...pieceRequest(item), transparent: true, format: "png", output: "image", n: 1, seed: item.seed,
                      size: largestSize() };
    const blob = await (await api("/v1/generate", { method: "POST", body: JSON.stringify(request) })).blob();
    saveBlob(blob, `jewelgan-${item.seed}-cutout.png`);
  } catch (e) {
    say(e.message, true, "detail-status");
  }
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---------------------------------------------------------------- a shop's own photo
async function editPhoto(event) {
  event.preventDefault();
  const file = $("edit-photo").files[0];
  if (!file || !(await ready("edit-status"))) return;
  const form = new FormData();
  form.append("photo", file);
  // the metal and the gemstone change on the photo itself (the translator); other attributes are re-drawn
  const attribute = $("edit-attribute").value;
  const translate = attribute === "metal" || attribute === "gemstone";
  form.append("attribute", attribute);
  form.append("attributes", JSON.stringify(fixedAttributes()));
  form.append("model", state.model.name);
  form.append("method", translate ? "translate" : "invert");
  if (attribute === "metal" && $("edit-source").value) form.append("source", $("edit-source").value);
  // the shop's own photos of a metal: edits to it take the colour measured on them, not the studio's
  const references = attribute === "metal" ? [...$("edit-references").files] : [];
  for (const f of references) form.append("references", f);
  if (references.length) form.append("reference_metal", $("edit-reference-metal").value);
  $("edit-submit").disabled = true;
  const done = busy("edit-status", translate ? `Changing the ${attribute}…` : "Fitting the model to your photo (a few seconds)…");
  try {
    const body = await postForm("/v1/edit", form);
    const fit = body.reconstruction ? [[{ data_url: body.reconstruction }, "model's fit"]] : [];
    const entries = [[{ data_url: body.original }, "your photo"], ...fit,
                     ...body.images.map((im) => [im, pretty(im.value) + (im.value === body.source ? " (as shot)" : "")])];
    $("edit-strip").replaceChildren(...entries.map(([im, caption]) => {
      const fig = document.createElement("figure");
      fig.append(Object.assign(document.createElement("img"), { src: im.data_url, alt: caption }),
                 Object.assign(document.createElement("figcaption"), { textContent: caption }));
      return fig;
    }));
    done();
    say(body.method === "translate"
      ? `Its ${body.attribute}: ${pretty(body.source)} (${body.source_read}); every ${body.attribute} in ${body.seconds} s at ${body.size.join("x")} px.` +
        (body.reference ? ` ${pretty(body.reference.metal)} in the colour of your ${body.reference.photos.length} photos of it.` : "")
      : `Fitted in ${body.seconds} s as ${describe(body.labels)}.`, false, "edit-status");
  } catch (e) {
    done();
    say(e.message, true, "edit-status");
  } finally {
    $("edit-submit").disabled = false;
  }
}

// ---------------------------------------------------------------- a product photo cut out by the matte
async function cutoutPhoto(event) {
  event.preventDefault();
  const file = $("cutout-photo").files[0];
  if (!file || !(await ready("cutout-status"))) return;
  const form = new FormData();
  form.append("photo", file);
  form.append("shadow", "true");
  $("cutout-submit").disabled = true;
  const done = busy("cutout-status", "Cutting the piece out…");
  try {
    const body = await postForm("/v1/cutout", form);
    const stem = file.name.replace(/\.[^.]*$/, "") || "photo";
    const entries = [[body.cutout, "on a checker"], [body.shadow, "shadow layer"]];
    $("cutout-strip").replaceChildren(...entries.map(([url, caption]) => {
      const fig = document.createElement("figure");
      fig.append(Object.assign(document.createElement("img"), { src: url, alt: caption, className: "checker" }),
                 Object.assign(document.createElement("figcaption"), { textContent: caption }));
      return fig;
    }));
    Object.assign($("cutout-download"), { href: body.cutout, download: `${stem}-cutout.png`, hidden: false });
    Object.assign($("cutout-shadow-download"), { href: body.shadow, download: `${stem}-shadow.png`, hidden: false });
    done();
    say(`Cut out at ${body.width} x ${body.height} px.`, false, "cutout-status");
  } catch (e) {
    done();
    say(e.message, true, "cutout-status");
  } finally {
    $("cutout-submit").disabled = false;
  }
}

// ---------------------------------------------------------------- try-on: a preview drawn in the browser,
// the final image composited by the server (light matching and shadow) when downloaded
const tryon = { photo: null, cover: null, pieces: [], anchors: [], scale: 0.1, angle: 0, drag: null };

function tryonForm(extra = {}) {
  const form = new FormData();
  form.append("photo", $("tryon-photo").files[0]);
  const item = state.selected;
  const attrs = item ? definiteAttrs(item.attributes) : fixedAttributes();
  form.append("attributes", JSON.stringify(attrs));
  form.append("seed", String(item ? item.seed : Number($("seed").value) || 0));
  form.append("truncation", String(item ? item.request.truncation : Number($("truncation").value)));
  form.append("model", state.model.name);
  for (const [k, v] of Object.entries(extra)) form.append(k, v);
  return form;
}

const definiteAttrs = (a) => Object.fromEntries(Object.entries(a).filter(([, v]) => v));

async function postForm(path, form) {
  const key = $("api-key").value.trim();
  const res = await fetch(path, { method: "POST", body: form, headers: key ? { Authorization: "Bearer " + key } : {} });
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON: the status line below */ }
  if (!res.ok) {
    let message = body && body.error ? body.error : res.status + " " + res.statusText;
    if (body && body.choices) message += " (choose from: " + body.choices.join(", ") + ")";
    if (res.status === 503 || res.status === 429) {
      message += "; retry in " + (res.headers.get("Retry-After") || "a few") + " s";
    }
    throw new Error(message);
  }
  return body;
}

const loadImage = (src) => new Promise((ok, fail) => {
  const im = new Image();
  im.onload = () => ok(im);
  im.onerror = fail;
  im.src = src;
});

async function startTryon(event) {
  event.preventDefault();
  if (!$("tryon-photo").files[0] || !(await ready("tryon-status"))) return;
  $("tryon-submit").disabled = true;
  const done = busy("tryon-status", "Placing the piece on your photo…");
  try {
    const body = await postForm("/v1/tryon", tryonForm());
    tryon.photo = await loadImage(body.photo);
    // hair and fingers in front of the piece where it was found (the download recomputes them where it is)
    tryon.cover = body.cover ? await loadImage(body.cover) : null;
    tryon.pieces = await Promise.all(body.pieces.map(async (p) => ({ image: await loadImage(p.data_url),
                                                                      centroid: p.centroid })));
    tryon.anchors = body.placement.anchors.map((a) => [...a]);
    tryon.scale = body.placement.scale;
    tryon.angle = body.placement.angle;
    $("tryon-scale").value = tryon.scale;
    $("tryon-angle").value = tryon.angle;
    $("tryon-note").textContent = body.note || placedNote(body.placement.source);
    $("tryon-stage").hidden = false;
    drawTryon();
    done();
    say("", false, "tryon-status");
  } catch (e) {
    done();
    say(e.message, true, "tryon-status");
  } finally {
    $("tryon-submit").disabled = false;
  }
}

// "ear lobes (face landmarks)" -> "Placed on the ear lobes ...": what was found, without how
function placedNote(source) {
  const where = source.replace(/\s*\(.*\)\s*$/, "");
  return `Placed on the ${where}. Drag it to move it, and use Size and Turn to fit it.`;
}

function drawTryon() {
  const c = $("tryon-canvas");
  c.width = tryon.photo.width;
  c.height = tryon.photo.height;
  const g = c.getContext("2d");
  g.drawImage(tryon.photo, 0, 0);
  tryon.anchors.forEach(([x, y], i) => {
    // as the server places it: the piece's centre of mass on the anchor, scale x the photo's width wide
    const piece = tryon.pieces[i] || tryon.pieces[0];
    const k = tryon.scale * c.width / piece.image.width;
    g.save();
    g.translate(x, y);
    g.rotate(-tryon.angle * Math.PI / 180);
    g.drawImage(piece.image, -piece.centroid[0] * k, -piece.centroid[1] * k, piece.image.width * k,
                piece.image.height * k);
    g.restore();
  });
  if (tryon.cover) g.drawImage(tryon.cover, 0, 0);
}

function canvasPoint(e) {
  const c = $("tryon-canvas");
  const r = c.getBoundingClientRect();
  return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height];
}

function wireTryonCanvas() {
  const c = $("tryon-canvas");
  c.addEventListener("pointerdown", (e) => {
    const p = canvasPoint(e);
    const near = tryon.anchors.map((a, i) => [Math.hypot(a[0] - p[0], a[1] - p[1]), i]).sort((a, b) => a[0] - b[0])[0];
    tryon.drag = near ? { index: near[1], from: p } : null;
    c.setPointerCapture(e.pointerId);
  });
  c.addEventListener("pointermove", (e) => {
    if (!tryon.drag) return;
    const p = canvasPoint(e);
    const a = tryon.anchors[tryon.drag.index];
    a[0] += p[0] - tryon.drag.from[0];
    a[1] += p[1] - tryon.drag.from[1];
    tryon.drag.from = p;
    drawTryon();
  });
  c.addEventListener("pointerup", () => { tryon.drag = null; });
  $("tryon-scale").addEventListener("input", (e) => { tryon.scale = Number(e.target.value); drawTryon(); });
  $("tryon-angle").addEventListener("input", (e) => { tryon.angle = Number(e.target.value); drawTryon(); });
}

async function downloadTryon() {
  try {
    const body = await postForm("/v1/tryon", tryonForm({
      anchors: JSON.stringify(tryon.anchors), scale: String(tryon.scale), angle: String(tryon.angle),
    }));
    const blob = await (await fetch(body.composite)).blob();
    saveBlob(blob, "jewelgan-tryon.png");
    say("", false, "tryon-status");
  } catch (e) {
    say(e.message, true, "tryon-status");
  }
}

// ---------------------------------------------------------------- bulk jobs
async function submitJob(event) {
  event.preventDefault();
  if (!(await ready("bulk-status"))) return;
  const request = { ...common(), n: Number($("job-n").value) || 1, seed: Number($("seed").value) || 0,
                    format: $("job-format").value };
  try {
    state.job = await (await api("/v1/jobs", { method: "POST", body: JSON.stringify(request) })).json();
    $("job").hidden = false;
    $("job-download").hidden = true;
    $("job-cancel").disabled = false;
    $("job-id").textContent = state.job.id;
    say("", false, "bulk-status");
    pollJob();
  } catch (e) {
    say(e.message, true, "bulk-status");
  }
}

async function pollJob() {
  if (!state.job) return;
  try {
    const job = await (await api(`/v1/jobs/${state.job.id}`)).json();
    state.job = job;
    $("job-status").textContent = `${job.status}, ${job.done} of ${job.n}`;
    $("job-progress").max = job.n;
    $("job-progress").value = job.done;
    if (job.status === "queued" || job.status === "running") {
      setTimeout(pollJob, 500);
    } else {
      $("job-cancel").disabled = true;
      $("job-download").hidden = job.status !== "done";
      if (job.status === "failed") say(job.error, true, "bulk-status");
    }
  } catch (e) {
    say(e.message, true, "bulk-status");
  }
}

async function cancelJob() {
  try {
    await api(`/v1/jobs/${state.job.id}`, { method: "DELETE" });
  } catch (e) {
    say(e.message, true, "bulk-status");
  }
}

async function downloadJob() {
  try {
    const blob = await (await api(`/v1/jobs/${state.job.id}/download`)).blob();
    saveBlob(blob, `jewelgan-${state.job.id}.zip`);
  } catch (e) {
    say(e.message, true, "bulk-status");
  }
}

// ---------------------------------------------------------------- wiring
function init() {
  $("api-key").value = sessionStorage.getItem("jewelgan-key") || "";
  $("api-key").addEventListener("change", () => {
    sessionStorage.setItem("jewelgan-key", $("api-key").value.trim());
    loadModels().catch((e) => say(e.message, true));
  });
  $("model").addEventListener("change", (e) => chooseModel(e.target.value));
  $("truncation").addEventListener("input", (e) => { $("truncation-value").textContent = Number(e.target.value).toFixed(2); });
  $("random-seed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 2 ** 31); });
  $("controls").addEventListener("submit", generate);
  $("close-detail").addEventListener("click", () => { $("detail").hidden = true; });
  $("download-cutout").addEventListener("click", downloadCutout);
  $("interpolate").addEventListener("click", interpolate);
  $("job-form").addEventListener("submit", submitJob);
  $("edit-form").addEventListener("submit", editPhoto);
  $("cutout-form").addEventListener("submit", cutoutPhoto);
  $("tryon-form").addEventListener("submit", startTryon);
  $("tryon-download").addEventListener("click", downloadTryon);
  wireTryonCanvas();
  $("job-cancel").addEventListener("click", cancelJob);
  $("job-download").addEventListener("click", downloadJob);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("detail").hidden) $("detail").hidden = true;
  });
  loadModels().catch((e) => say(e.message, true));
}

init();
