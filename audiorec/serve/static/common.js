// Shared by the pages: API calls with the optional bearer token, the microphone recorder,
// pictures of a clip, and live PCM for the WebSocket stream. No libraries, no CDN.

const TOKEN_KEY = "audiorec-token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

// fetch() an API route; JSON back, or an Error whose message is the server's detail.
export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", `Bearer ${token()}`);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    const given = window.prompt("This server needs its token (audiorec serve --token):");
    if (given) {
      sessionStorage.setItem(TOKEN_KEY, given);
      return api(path, options);
    }
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail;
    } catch (e) { /* not JSON: keep the status text */ }
    throw new Error(`${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return response.status === 204 ? null : response.json();
}

// The browser's own processing would change the sound the model hears.
const RAW_AUDIO = { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false };

// Records the microphone with MediaRecorder (WebM/Opus in Chromium and Firefox, MP4 in Safari);
// the server decodes whatever comes.
export class Recorder {
  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: RAW_AUDIO });
    const type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"].find(
      (t) => window.MediaRecorder && MediaRecorder.isTypeSupported(t));
    this.recorder = new MediaRecorder(this.stream, type ? { mimeType: type } : {});
    this.chunks = [];
    this.recorder.ondataavailable = (e) => { if (e.data.size) this.chunks.push(e.data); };
    this.recorder.start();
    this.started = performance.now();
  }

  get recording() {
    return Boolean(this.recorder && this.recorder.state === "recording");
  }

  get seconds() {
    return this.recording ? (performance.now() - this.started) / 1000 : 0;
  }

  stop() {
    return new Promise((resolve) => {
      this.recorder.onstop = () => {
        this.stream.getTracks().forEach((t) => t.stop());
        resolve(new Blob(this.chunks, { type: this.recorder.mimeType || "application/octet-stream" }));
      };
      this.recorder.stop();
    });
  }
}

// A button that records while it is on: press to start, press again (or wait `maxSeconds`) to
// stop; `onStop(blob)` gets the recording while the button is disabled.
export class RecordButton {
  constructor(button, { onStatus, onStop, maxSeconds = 10 }) {
    this.button = button;
    this.onStatus = onStatus;
    this.onStop = onStop;
    this.maxSeconds = maxSeconds;
    this.recorder = new Recorder();
    this.label = button.textContent;
    button.addEventListener("click", () => this.toggle());
  }

  get recording() {
    return this.recorder.recording;
  }

  async toggle() {
    if (this.recorder.recording) {
      clearInterval(this.timer);
      this.button.classList.remove("on");
      this.button.textContent = this.label;
      this.button.disabled = true;
      const blob = await this.recorder.stop();
      try {
        await this.onStop(blob);
      } finally {
        this.button.disabled = false;
      }
      return;
    }
    try {
      await this.recorder.start();
    } catch (e) {
      this.onStatus(`No microphone: ${e.message}`, true);
      return;
    }
    this.button.classList.add("on");
    this.button.textContent = "■ Stop";
    this.timer = setInterval(() => {
      this.onStatus(`Recording… ${this.recorder.seconds.toFixed(1)} s`);
      if (this.recorder.seconds >= this.maxSeconds) this.toggle();
    }, 100);
  }
}

// Streams the microphone as 16-bit PCM at `sampleRate` to a callback, in ~100 ms chunks.
export class PcmSource {
  async start(sampleRate, onChunk) {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: RAW_AUDIO });
    this.context = new AudioContext({ sampleRate });
    await this.context.audioWorklet.addModule("/static/pcm-worklet.js");
    const source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, "pcm-capture");
    const chunkSamples = Math.round(sampleRate / 10);
    let pending = [];
    let n = 0;
    this.node.port.onmessage = (e) => {
      pending.push(e.data);
      n += e.data.length;
      if (n < chunkSamples) return;
      const pcm = new Int16Array(n);
      let offset = 0;
      for (const block of pending) {
        for (let i = 0; i < block.length; i++) {
          pcm[offset++] = Math.max(-32768, Math.min(32767, Math.round(block[i] * 32768)));
        }
      }
      pending = [];
      n = 0;
      onChunk(pcm.buffer);
    };
    source.connect(this.node);
  }

  async stop() {
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.context) await this.context.close();
  }
}

export function streamUrl(threshold) {
  const url = new URL("/api/v1/stream", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (token()) url.searchParams.set("token", token());
  if (threshold) url.searchParams.set("threshold", threshold);
  return url.toString();
}

// Magma-like colour stops for the spectrogram, quiet to loud.
const STOPS = [[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]];

function colour(v) {
  const x = (v / 255) * (STOPS.length - 1);
  const i = Math.min(Math.floor(x), STOPS.length - 2);
  const f = x - i;
  return STOPS[i].map((c, k) => Math.round(c + f * (STOPS[i + 1][k] - c)));
}

const LUT = Array.from({ length: 256 }, (_, v) => colour(v));

function fitCanvas(canvas) {
  const scale = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * scale);
  canvas.height = Math.round(canvas.clientHeight * scale);
  return canvas.getContext("2d");
}

// `peaks` is [min, max, min, max, ...] over equal slices of the clip.
export function drawWaveform(canvas, peaks, durationS) {
  const ctx = fitCanvas(canvas);
  const { width, height } = canvas;
  ctx.fillStyle = "#10141c";
  ctx.fillRect(0, 0, width, height);
  ctx.strokeStyle = "#2b3342";
  ctx.beginPath();
  ctx.moveTo(0, height / 2);
  ctx.lineTo(width, height / 2);
  ctx.stroke();
  const columns = peaks.length / 2;
  ctx.fillStyle = "#5ec8f0";
  for (let i = 0; i < columns; i++) {
    const x = (i / columns) * width;
    const top = (0.5 - peaks[2 * i + 1] / 2) * height;
    const bottom = (0.5 - peaks[2 * i] / 2) * height;
    ctx.fillRect(x, top, Math.max(1, width / columns), Math.max(1, bottom - top));
  }
  label(ctx, `${durationS.toFixed(2)} s`, width - 6, height - 6, "right");
}

export function drawSpectrogram(canvas, spec) {
  const ctx = fitCanvas(canvas);
  const { width, height } = canvas;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, width, height);
  if (!spec.n_frames) return;
  const bytes = Uint8Array.from(atob(spec.data), (c) => c.charCodeAt(0));
  const image = new ImageData(spec.n_frames, spec.n_bins);
  for (let t = 0; t < spec.n_frames; t++) {
    for (let f = 0; f < spec.n_bins; f++) {
      const [r, g, b] = LUT[bytes[t * spec.n_bins + f]];
      const at = ((spec.n_bins - 1 - f) * spec.n_frames + t) * 4; // low frequencies at the bottom
      image.data[at] = r;
      image.data[at + 1] = g;
      image.data[at + 2] = b;
      image.data[at + 3] = 255;
    }
  }
  const tile = document.createElement("canvas");
  tile.width = spec.n_frames;
  tile.height = spec.n_bins;
  tile.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(tile, 0, 0, width, height);
  label(ctx, `${(spec.max_hz / 1000).toFixed(0)} kHz`, 6, 16, "left");
  label(ctx, "0", 6, height - 6, "left");
  label(ctx, `${(spec.n_frames * spec.hop_s).toFixed(2)} s`, width - 6, height - 6, "right");
}

function label(ctx, text, x, y, align) {
  ctx.font = `${12 * (window.devicePixelRatio || 1)}px system-ui, sans-serif`;
  ctx.textAlign = align;
  ctx.fillStyle = "rgba(255,255,255,0.8)";
  ctx.fillText(text, x, y);
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}
