// The page of `swinir serve`: plain JavaScript, no build step, no external resources.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { config: null, files: [], jobs: new Map(), current: null, zoom: "fit", split: 50, polling: null };
const HEADERS = { "X-SwinIR": "1", "Content-Type": "application/octet-stream" };

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = kind === "info" ? "info" : "";
  box.hidden = !text;
}

function megabytes(bytes) { return (bytes / 1e6).toFixed(1) + " MB"; }

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  }
  return data;
}

// ---- settings ----------------------------------------------------------------------------------
function levelText(kind, value) {
  if (kind === "scale") return `×${value}`;
  if (kind === "noise") return `noise σ = ${value}`;
  return `JPEG quality ${value}`;
}

function currentTask() { return state.config.tasks.find((t) => t.id === $("task").value); }

function fillLevels() {
  const task = currentTask();
  const level = $("level");
  const previous = level.dataset.task === task.id ? level.value : task.default;
  level.innerHTML = "";
  level.disabled = false;
  level.dataset.task = task.id;
  if (task.auto) level.add(new Option("Automatic (estimated from each image)", "auto", false, previous === "auto"));
  for (const value of task.values) {
    level.add(new Option(levelText(task.level, value), value, false, String(value) === String(previous)));
  }
  $("level-label").textContent = { scale: "Scale", noise: "Noise level of the input", jpeg: "JPEG quality of the input" }[task.level];
}

function selectedModel() { return state.config.models.find((m) => m.id === $("model").value); }

function fixedModel(model) { return model && (model.source === "cli" || model.source === "uploaded"); }

function modelMatches(model, task) {
  if (model.source === "auto") return true;
  if (fixedModel(model)) return !model.task || model.task === task.id;
  if (model.task !== task.id) return false;
  if ($("level").value === "auto") return false;  // the level (and model) is chosen per image
  const value = Number($("level").value);
  return (task.level === "scale" && model.scale === value) || (task.level === "noise" && model.noise === value)
    || (task.level === "jpeg" && model.jpeg === value);
}

function fillModels(select) {
  const task = currentTask();
  const box = $("model");
  const previous = select || box.value || state.config.default_model;
  box.innerHTML = "";
  for (const model of state.config.models.filter((m) => modelMatches(m, task))) {
    const where = { auto: "", cli: " — from the command line", bundled: " — bundled", cached: " — downloaded",
                    uploaded: " — uploaded" }[model.source];
    box.add(new Option(model.label + where, model.id, false, model.id === previous));
  }
  updateLevel();
  fillBlend();
}

function fillBlend() {
  // Any other model of the same task and scale can be blended with the chosen one.
  const task = currentTask();
  const chosen = selectedModel();
  const box = $("blend");
  const previous = box.value;
  box.innerHTML = "";
  box.add(new Option("No blending", ""));
  const auto = $("level").value === "auto";
  for (const model of state.config.models) {
    if (model.source === "auto" || auto || (chosen && model.id === chosen.id)) continue;
    if (model.task && model.task !== task.id) continue;
    if (chosen && chosen.source !== "auto" && model.scale !== chosen.scale) continue;
    box.add(new Option(model.label, model.id, false, model.id === previous));
  }
  box.disabled = box.options.length === 1;
  $("blend-row").hidden = !box.value;
}

function updateLevel() {
  // A model of one's own decides the level itself; otherwise the level picks among the zoo's models.
  const model = selectedModel();
  const level = $("level");
  if (fixedModel(model)) {
    const task = currentTask();
    const text = task.level === "scale" ? `×${model.scale}` : "as trained";
    level.innerHTML = "";
    level.add(new Option(`${text} (set by the model)`, model.scale));
    level.disabled = true;
    level.dataset.task = "";
  } else if (level.disabled) {
    fillLevels();
    fillModels();
  }
}

async function loadConfig(selectModel) {
  state.config = await api("/api/config");
  const task = $("task");
  if (!task.options.length) {
    for (const t of state.config.tasks) task.add(new Option(t.label, t.id, false, t.id === state.config.default_task));
    fillLevels();
  }
  const chosen = state.config.models.find((m) => m.id === selectModel);
  if (chosen && chosen.task && chosen.task !== task.value) { task.value = chosen.task; fillLevels(); }
  fillModels(selectModel);
  $("limits").textContent = `Images up to ${megabytes(state.config.max_upload_bytes)} each. Models run on ${state.config.device}, one image at a time.`;
}

// ---- choosing files ----------------------------------------------------------------------------
function addFiles(list) {
  const limit = state.config.max_upload_bytes;
  const refused = [];
  for (const file of list) {
    if (file.size > limit) { refused.push(`${file.name} is ${megabytes(file.size)}; the limit is ${megabytes(limit)}`); continue; }
    state.files.push(file);
  }
  showMessage(refused.join("\n"));
  renderSelected();
}

function renderSelected() {
  const ul = $("selected");
  ul.innerHTML = "";
  state.files.forEach((file, index) => {
    const li = document.createElement("li");
    li.textContent = file.name;
    const remove = document.createElement("button");
    remove.textContent = "×";
    remove.title = "Remove";
    remove.onclick = () => { state.files.splice(index, 1); renderSelected(); };
    li.append(remove);
    ul.append(li);
  });
  $("start").disabled = state.files.length === 0;
  $("start").textContent = state.files.length > 1 ? `Restore ${state.files.length} images` : "Restore";
}

async function start() {
  const files = state.files.splice(0);
  renderSelected();
  showMessage("");
  const params = new URLSearchParams({
    task: $("task").value, level: $("level").value, model: $("model").value,
    tile: $("tile").value, ensemble: $("ensemble").checked ? "1" : "0",
  });
  if ($("blend").value) {
    params.set("blend", $("blend").value);
    params.set("blend_alpha", (Number($("blend-alpha").value) / 100).toFixed(2));
  }
  const errors = [];
  for (const file of files) {
    params.set("name", file.name);
    try {
      const job = await api(`/api/jobs?${params}`, { method: "POST", headers: HEADERS, body: file });
      state.jobs.set(job.id, job);
      if (!state.current) state.current = job.id;
    } catch (error) {
      errors.push(error.message);
    }
  }
  showMessage(errors.join("\n"));
  renderJobs();
  poll();
}

async function uploadModel(file) {
  if (file.size > state.config.max_model_bytes) {
    showMessage(`${file.name} is ${megabytes(file.size)}; the limit for a model is ${megabytes(state.config.max_model_bytes)}`);
    return;
  }
  showMessage(`Loading ${file.name}…`, "info");
  try {
    const model = await api(`/api/models?name=${encodeURIComponent(file.name)}`, { method: "POST", headers: HEADERS, body: file });
    await loadConfig(model.id);
    showMessage(`${model.label} is ready.`, "info");
  } catch (error) {
    showMessage(error.message);
  }
}

// ---- jobs --------------------------------------------------------------------------------------
function stateText(job) {
  if (job.state === "queued") return job.position > 1 ? `waiting (${job.position - 1} before it)` : "waiting";
  if (job.state === "running") return `${job.message} · ${job.elapsed.toFixed(0)} s`;
  if (job.state === "done") return `done in ${job.elapsed.toFixed(1)} s · ${job.output.width}×${job.output.height}`;
  return job.message;
}

function renderJobs() {
  const ul = $("jobs");
  for (const job of state.jobs.values()) {
    let li = ul.querySelector(`[data-id="${job.id}"]`);
    if (!li) {
      li = document.createElement("li");
      li.className = "job";
      li.dataset.id = job.id;
      li.innerHTML = '<div class="name"></div><div class="bar"><div></div></div><div class="state"></div><div class="actions"></div>';
      li.querySelector(".name").textContent = job.name;
      li.querySelector(".name").title = `${job.name} — ${job.model}`;
      li.onclick = () => { state.current = job.id; renderJobs(); };
      ul.append(li);
    }
    li.dataset.state = job.state;
    li.classList.toggle("current", job.id === state.current);
    li.querySelector(".state").textContent = stateText(job);
    const bar = li.querySelector(".bar");
    const fraction = job.state === "done" ? 1 : job.total > 1 ? job.done / job.total : 0;
    bar.classList.toggle("indeterminate", job.state === "running" && job.total <= 1);
    bar.firstElementChild.style.width = job.state === "running" && job.total <= 1 ? "" : `${fraction * 100}%`;
    const actions = li.querySelector(".actions");
    const wanted = job.state === "done" ? "done" : (job.state === "queued" || job.state === "running") ? "cancel" : "none";
    if (actions.dataset.kind !== wanted) {
      actions.dataset.kind = wanted;
      actions.innerHTML = "";
      if (wanted === "done") {
        const link = document.createElement("a");
        link.className = "button download";
        link.href = job.download_url;
        link.download = job.download_name;
        link.textContent = "Download";
        link.onclick = (event) => event.stopPropagation();
        actions.append(link);
      } else if (wanted === "cancel") {
        const cancel = document.createElement("button");
        cancel.type = "button";
        cancel.textContent = "Cancel";
        cancel.onclick = async (event) => {
          event.stopPropagation();
          try { state.jobs.set(job.id, await api(`/api/jobs/${job.id}`, { method: "DELETE", headers: HEADERS })); }
          catch (error) { showMessage(error.message); }
          renderJobs();
        };
        actions.append(cancel);
      }
    }
  }
  renderViewer();
}

async function poll() {
  if (state.polling) return;
  state.polling = setInterval(async () => {
    try {
      const jobs = await api("/api/jobs");
      for (const job of jobs) state.jobs.set(job.id, job);
      renderJobs();
      if (!jobs.some((j) => j.state === "queued" || j.state === "running")) {
        clearInterval(state.polling);
        state.polling = null;
      }
    } catch (error) {
      showMessage(`Lost contact with the app: ${error.message}`);
    }
  }, 400);
}

// ---- before/after viewer -----------------------------------------------------------------------
function renderViewer() {
  const job = state.jobs.get(state.current);
  const viewer = $("viewer");
  if (!job) { viewer.hidden = true; return; }
  viewer.hidden = false;
  $("viewer-title").textContent = job.name;
  const before = $("before"), after = $("after");
  const resultUrl = job.result_url || job.input_url;
  if (before.dataset.src !== job.input_url) { before.src = job.input_url; before.dataset.src = job.input_url; }
  if (after.dataset.src !== resultUrl) { after.src = resultUrl; after.dataset.src = resultUrl; }
  const download = $("download");
  download.hidden = job.state !== "done";
  if (job.download_url) { download.href = job.download_url; download.download = job.download_name; }
  const input = job.input;
  const bits = `${input.bit_depth}-bit${input.alpha ? " with alpha" : ""}${input.channels === 1 ? ", gray" : ""}`;
  const output = job.output ? ` → result ${job.output.width}×${job.output.height}` : "";
  $("viewer-info").textContent = `Input ${input.width}×${input.height} (${input.format}, ${bits})${output} · model ${job.model}`;
  layout();
}

function layout() {
  const job = state.jobs.get(state.current);
  if (!job) return;
  const out = job.output || job.input;
  const outW = out.width, outH = out.height;
  let width, height;
  if (state.zoom === "fit") {
    const room = Math.max(200, $("stage").clientWidth - 2);
    const factor = Math.min(room / outW, Math.max(240, window.innerHeight * 0.55) / outH);
    width = outW * factor; height = outH * factor;
  } else {
    width = outW * Number(state.zoom); height = outH * Number(state.zoom);
  }
  const compare = $("compare");
  compare.style.width = `${Math.round(width)}px`;
  compare.style.height = `${Math.round(height)}px`;
  compare.classList.toggle("pixelated", state.zoom !== "fit" && Number(state.zoom) >= 2);
  setSplit(state.split);
}

function setSplit(percent) {
  state.split = Math.max(0, Math.min(100, percent));
  $("before-clip").style.clipPath = `inset(0 ${100 - state.split}% 0 0)`;
  $("handle").style.left = `${state.split}%`;
  $("slider").value = state.split;
}

function initViewer() {
  $("slider").addEventListener("input", (event) => setSplit(Number(event.target.value)));
  const compare = $("compare");
  const move = (event) => {
    const rect = compare.getBoundingClientRect();
    setSplit(((event.clientX - rect.left) / rect.width) * 100);
  };
  compare.addEventListener("pointerdown", (event) => { compare.setPointerCapture(event.pointerId); move(event); });
  compare.addEventListener("pointermove", (event) => { if (compare.hasPointerCapture(event.pointerId)) move(event); });
  for (const button of document.querySelectorAll("[data-zoom]")) {
    button.addEventListener("click", () => {
      state.zoom = button.dataset.zoom;
      for (const b of document.querySelectorAll("[data-zoom]")) b.classList.toggle("active", b === button);
      layout();
    });
  }
  window.addEventListener("resize", layout);
}

// ---- wiring ------------------------------------------------------------------------------------
function init() {
  const drop = $("drop");
  drop.addEventListener("click", (event) => { if (event.target.tagName !== "LABEL") $("files").click(); });
  drop.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") $("files").click(); });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (event) => addFiles(event.dataTransfer.files));
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => event.preventDefault());
  $("files").addEventListener("change", (event) => { addFiles(event.target.files); event.target.value = ""; });
  $("model-file").addEventListener("change", (event) => { if (event.target.files[0]) uploadModel(event.target.files[0]); event.target.value = ""; });
  $("task").addEventListener("change", () => { fillLevels(); fillModels(); });
  $("level").addEventListener("change", () => fillModels());
  $("model").addEventListener("change", () => { updateLevel(); fillBlend(); });
  $("blend").addEventListener("change", () => { $("blend-row").hidden = !$("blend").value; });
  $("blend-alpha").addEventListener("input", () => {
    $("blend-value").textContent = (Number($("blend-alpha").value) / 100).toFixed(2);
  });
  $("start").addEventListener("click", start);
  initViewer();
  loadConfig().then(async () => {
    const jobs = await api("/api/jobs");
    for (const job of jobs) state.jobs.set(job.id, job);
    if (jobs.length) { state.current = jobs[jobs.length - 1].id; renderJobs(); poll(); }
    document.body.dataset.ready = "1";
  }).catch((error) => showMessage(`Cannot load the settings: ${error.message}`));
}

init();
