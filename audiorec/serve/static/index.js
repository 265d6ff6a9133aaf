import { api, drawSpectrogram, drawWaveform, el, PcmSource, RecordButton, streamUrl } from "/static/common.js";

const $ = (id) => document.getElementById(id);

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function showModel() {
  try {
    const model = await api("/api/v1/model");
    $("model").textContent = `${model.source} · ${model.labels.length} labels: ${model.labels.join(", ")}`;
  } catch (e) {
    $("model").textContent = e.message;
  }
}

function showResult(answer, audioBlob) {
  $("result").hidden = false;
  $("label").textContent = answer.label;
  $("score").textContent = `${(100 * answer.score).toFixed(1)}%`;
  $("topk").replaceChildren(...answer.top_k.flatMap(({ label, score }) => [
    el("span", {}, label),
    el("div", { class: "bar" }, el("div", { style: `width:${(100 * score).toFixed(1)}%` })),
    el("span", { class: "pct" }, `${(100 * score).toFixed(1)}%`),
  ]));
  drawWaveform($("waveform"), answer.display.waveform, answer.duration_s);
  drawSpectrogram($("spectrogram"), answer.display.spectrogram);
  $("playback").src = URL.createObjectURL(audioBlob);
  document.body.dataset.recognized = answer.label; // for scripts and tests: the last answer
}

async function recognize(body, audioBlob, what) {
  setStatus(`Recognising ${what}…`);
  try {
    const answer = await api("/api/v1/recognize?display=true", { method: "POST", body });
    showResult(answer, audioBlob);
    setStatus(`${what}: ${answer.duration_s.toFixed(2)} s of audio.`);
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function upload(event) {
  const file = event.target.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  await recognize(form, file, file.name);
  event.target.value = "";
}

let socket = null;
let source = null;

async function stopListening(note) {
  if (source) await source.stop();
  source = null;
  if (socket && socket.readyState === WebSocket.OPEN) socket.close();
  socket = null;
  $("listen").textContent = "Start listening";
  if (note) $("listen-status").textContent = note;
}

function startListening() {
  socket = new WebSocket(streamUrl());
  socket.binaryType = "arraybuffer";
  $("listen").textContent = "Stop listening";
  $("listen-status").textContent = "Connecting…";
  socket.onmessage = async (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      source = new PcmSource();
      try {
        await source.start(message.sample_rate, (pcm) => socket && socket.readyState === WebSocket.OPEN && socket.send(pcm));
        $("listen-status").textContent = `Listening (threshold ${message.threshold}); say a command.`;
      } catch (e) {
        stopListening(`No microphone: ${e.message}`);
      }
    } else if (message.type === "detection") {
      $("detections").prepend(el("li", {}, `${message.time_s.toFixed(2)} s  `, el("b", {}, message.label),
        `  ${(100 * message.score).toFixed(0)}%`));
    } else if (message.type === "error") {
      stopListening(message.detail);
    }
  };
  socket.onclose = (event) => {
    if (source) stopListening(event.reason ? `Closed: ${event.reason}` : "Stopped.");
  };
}

new RecordButton($("record"), { onStatus: setStatus, onStop: (blob) => recognize(blob, blob, "your recording") });
$("upload").addEventListener("change", upload);
$("listen").addEventListener("click", () => (socket ? stopListening("Stopped.") : startListening()));
showModel();
