import { api, el, RecordButton } from "/static/common.js";

const IGNORED = new Set(["_silence_", "_unknown_"]);
const $ = (id) => document.getElementById(id);

// One prompt per (label, take); `saved` is the server's record of it, or null.
let prompts = [];
let current = 0;
let speaker = "";

function status(id, text, error = false) {
  $(id).textContent = text;
  $(id).classList.toggle("error", error);
}

const takeUrl = (p) => `/api/v1/dataset/${encodeURIComponent(p.label)}/${encodeURIComponent(speaker)}/${p.take}`;

async function loadModelLabels() {
  try {
    const model = await api("/api/v1/model");
    $("labels").value = model.labels.filter((l) => !IGNORED.has(l)).join(", ");
  } catch (e) {
    status("setup-status", e.message, true);
  }
}

async function start() {
  const labels = [...new Set($("labels").value.split(",").map((l) => l.trim()).filter(Boolean))];
  const n = parseInt($("takes-per-label").value, 10);
  speaker = $("speaker").value.trim();
  if (!labels.length || !speaker || !(n >= 1)) {
    status("setup-status", "Enter the labels, a speaker name and how many takes of each.", true);
    return;
  }
  let listing;
  try {
    listing = await api(`/api/v1/dataset?speaker=${encodeURIComponent(speaker)}`);
  } catch (e) {
    status("setup-status", e.message, true);
    return;
  }
  const saved = new Map(listing.takes.map((t) => [`${t.label}\u0000${t.take}`, t]));
  prompts = labels.flatMap((label) => Array.from({ length: n }, (_, take) => (
    { label, take, saved: saved.get(`${label}\u0000${take}`) || null })));
  $("dataset").textContent = `saving to ${listing.dataset_dir}`;
  status("setup-status", "");
  $("session").hidden = false;
  current = Math.max(0, prompts.findIndex((p) => !p.saved));
  render();
}

function render() {
  const p = prompts[current];
  const perLabel = prompts.filter((q) => q.label === p.label).length;
  $("prompt-label").textContent = p.label;
  $("prompt-take").textContent = `take ${p.take + 1} of ${perLabel}${p.saved ? " (recording again replaces it)" : ""}`;
  $("takes").replaceChildren(...prompts.map((q, i) => el("tr",
    { class: i === current ? "current" : "", "data-label": q.label, "data-take": String(q.take) },
    el("td", {}, q.label),
    el("td", {}, String(q.take + 1)),
    el("td", { class: q.saved ? "saved" : "" }, q.saved ? `✓ ${q.saved.duration_s.toFixed(2)} s` : "—"),
    el("td", {}, el("button", { onclick: () => { current = i; render(); } }, q.saved ? "Redo" : "Record this")))));
  const done = prompts.filter((q) => q.saved).length;
  if (done === prompts.length && !recordButton.recording) {
    status("studio-status", `All ${done} takes saved. Train on them: audiorec train --data ${$("dataset").textContent.replace("saving to ", "")}`);
  }
}

async function save(blob) {
  const p = prompts[current];
  status("studio-status", "Saving…");
  try {
    p.saved = await api(takeUrl(p), { method: "PUT", body: blob });
    status("studio-status", `Saved ${p.saved.path} (${p.saved.duration_s.toFixed(2)} s).`);
    const next = prompts.findIndex((q, i) => i > current && !q.saved);
    const first = prompts.findIndex((q) => !q.saved);
    current = next >= 0 ? next : first >= 0 ? first : current;
  } catch (e) {
    status("studio-status", e.message, true);
  }
  render();
}

const recordButton = new RecordButton($("rec"), { onStatus: (text, error) => status("studio-status", text, error), onStop: save });

$("model-labels").addEventListener("click", loadModelLabels);
$("start").addEventListener("click", start);
