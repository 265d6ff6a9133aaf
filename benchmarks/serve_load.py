"""Benchmark: ``audiorec serve`` under load (throughput, latency, errors, accuracy, memory).

Starts ``audiorec serve MODEL`` on a free local port as a subprocess, then runs ``--clients``
concurrent HTTP clients (spread over ``--processes`` load-generator processes, each an
``httpx2.AsyncClient`` with a connection per client) for ``--seconds`` after a short uncounted
warm-up. One Python process cannot generate this load: it saturates one core at about 170
requests/s while the server idles at half a core, so the default is one process per core. Every client loops over the clips of a manifest (round robin,
each from its own offset) and POSTs one clip per request to ``/api/v1/recognize`` as the raw body
(``Content-Type: audio/wav``). Writes ``benchmarks/results/serve_load.{json,md}``; the README's
table is copied from the Markdown file.

Measured (requests started during the measured period; each finishes even past its end):

- requests completed and throughput (requests/s over the period until the last of them answered);
- wall latency per request as the client sees it (send to parsed answer): p50, p95, p99, max;
- 5xx answers, 4xx answers, and lost requests: those that raised (timeout, connection error) or
  got a 2xx answer that is not JSON with a ``label`` (the target is zero 5xx and zero lost);
- accuracy under load: answers equal to the clip's label, over the answers with a label (it
  should equal the model's own accuracy on the clips, 0.94 for the SC12 test split);
- the server's peak resident memory (``VmHWM`` of ``/proc/<pid>/status``, read before it stops),
  and the CPU used by the server and by the load generator (in cores, over warm-up + measured);
- the machine and the versions of Python, FastAPI, uvicorn and ONNX Runtime.

The load generator runs on the same machine as the server and competes with it for the CPU (it
uses about as much as the server), so the figures are a lower bound for the server alone. Clips that are not WAV files (the SC12 split
is stored as 16-bit FLAC) are converted once to 16-bit PCM WAV in memory, losslessly, before the
server starts, so every request carries a real WAV file.

Exit code: 1 when any request got a 5xx answer or was lost (warm-up included), else 0.

Usage::

    .venv/bin/python benchmarks/serve_load.py                          # 60 s, 50 clients, 2 workers, 2 processes
    .venv/bin/python benchmarks/serve_load.py --workers 1 --results /tmp/serve_load_w1
    .venv/bin/python benchmarks/serve_load.py --seconds 10 --clients 8 # a quick check

Options: ``--model`` (.onnx file or run directory), ``--clips`` (JSON Lines manifest with ``path``
and ``label``), ``--workers`` (the server's ``--workers``), ``--clients``, ``--processes``, ``--seconds``,
``--warmup-s``, ``--timeout-s`` (per request, client side), ``--server-timeout-s`` (the server's
``--timeout-s``), ``--results`` (path without suffix).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from _common import RESULTS, ROOT, relative
DEFAULT_MODEL = ROOT / "runs" / "bench" / "export" / "sc12.onnx"
DEFAULT_CLIPS = ROOT / "runs" / "bench" / "sc12_speaker_split" / "splits" / "test.jsonl"
STARTUP_TIMEOUT_S = 60.0
RECOGNIZE = "/api/v1/recognize"


@dataclass
class Clip:
    wav: bytes
    label: str


@dataclass
class Tally:
    """What the clients saw in one phase (warm-up or measured)."""

    latencies_s: list[float] = field(default_factory=list)  # every request that got an HTTP answer
    status: dict[int, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)  # reason -> count
    answered: int = 0  # 2xx answers that are JSON with a label
    correct: int = 0
    last_done: float = 0.0

    @property
    def n_5xx(self) -> int:
        return sum(n for s, n in self.status.items() if s >= 500)

    @property
    def n_4xx(self) -> int:
        return sum(n for s, n in self.status.items() if 400 <= s < 500)

    @property
    def n_lost(self) -> int:
        return sum(self.lost.values())

    @property
    def n_requests(self) -> int:
        return len(self.latencies_s) + sum(n for reason, n in self.lost.items() if not reason.startswith("bad answer"))

    def lose(self, reason: str) -> None:
        self.lost[reason] = self.lost.get(reason, 0) + 1

    def merge(self, other: "Tally") -> "Tally":
        """Add another process's tally to this one."""
        self.latencies_s += other.latencies_s
        for mine, theirs in ((self.status, other.status), (self.lost, other.lost)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        self.answered += other.answered
        self.correct += other.correct
        self.last_done = max(self.last_done, other.last_done)
        return self


def wav_bytes(path: Path) -> bytes:
    """The file's bytes when it is a WAV file, else the audio as 16-bit PCM WAV (or float for float sources)."""
    data = path.read_bytes()
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return data
    import soundfile

    samples, sample_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    subtype = soundfile.info(io.BytesIO(data)).subtype
    out = io.BytesIO()
    soundfile.write(out, samples, sample_rate, format="WAV", subtype=subtype if subtype in ("PCM_16", "PCM_24") else "FLOAT")
    return out.getvalue()


def load_clips(manifest: Path) -> tuple[list[Clip], str]:
    """Read every clip of a JSON Lines manifest into memory as WAV bytes; also say what was converted."""
    from audiorec.data.manifest import read_manifest

    clips, converted = [], 0
    for utterance in read_manifest(manifest):
        if utterance.label is None:
            raise SystemExit(f"{manifest}: {utterance.path} has no label; the benchmark needs labelled clips")
        path = Path(utterance.path)
        wav = wav_bytes(path)
        converted += wav != path.read_bytes()
        clips.append(Clip(wav, utterance.label))
    if not clips:
        raise SystemExit(f"{manifest}: no clips")
    note = f"{converted} of {len(clips)} clips converted to WAV in memory" if converted else "WAV files as stored"
    return clips, note


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far, from /proc/<pid>/stat; None where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def peak_rss_mib(pid: int) -> dict:
    """Peak and current resident memory (VmHWM, VmRSS) of a process in MiB, from /proc; {} where unreadable."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    values = {k: v for k, _, v in (line.partition(":") for line in lines)}
    out = {}
    for key, name in (("VmHWM", "server_peak_rss_mib"), ("VmRSS", "server_rss_at_end_mib")):
        if key in values:
            out[name] = round(int(values[key].split()[0]) / 1024, 1)  # kB
    return out


class Server:
    """``audiorec serve`` in a subprocess, its output in a temporary file (a pipe nobody reads would block it)."""

    def __init__(self, model: Path, workers: int, timeout_s: float | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [str(Path(sys.executable).with_name("audiorec")), "serve", str(model), "--host", "127.0.0.1",
                        "--port", str(self.port), "--workers", str(workers)]
        if timeout_s is not None:
            self.command += ["--timeout-s", str(timeout_s)]
        self.log = tempfile.TemporaryFile(mode="w+b", prefix="serve-load-")
        self.proc = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)

    def output(self, tail: int = 4000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-tail:]

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> float:
        """Poll ``/healthz`` until it answers ``{"status": "ok"}``; seconds it took."""
        import httpx2 as httpx

        start = time.perf_counter()
        while time.perf_counter() - start < timeout_s:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with code {self.proc.returncode} before answering /healthz\n"
                                 f"command: {shlex.join(self.command)}\nits output:\n{self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).json() == {"status": "ok"}:
                    return time.perf_counter() - start
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"the server did not answer {self.url}/healthz within {timeout_s:g} s\n"
                         f"command: {shlex.join(self.command)}\nits output:\n{self.output()}")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


async def load(url: str, clips: list[Clip], clients: range, n_clients: int, start: float, warmup_s: float,
               seconds: float, timeout_s: float) -> tuple[Tally, Tally]:
    """Run ``clients`` (indices out of ``n_clients``) from ``start`` (``time.perf_counter()``, which
    is the system-wide monotonic clock, so every process shares it); the warm-up and measured tallies."""
    import httpx2 as httpx

    warm, measured = Tally(), Tally()
    limits = httpx.Limits(max_connections=len(clients), max_keepalive_connections=len(clients))
    # pool=None: a client never waits for a connection (there is one per client), so no PoolTimeout.
    timeout = httpx.Timeout(timeout_s, pool=None)
    t0, t_end = start + warmup_s, start + warmup_s + seconds

    async def client(i: int, http: httpx.AsyncClient) -> None:
        k = i * len(clips) // n_clients
        while (sent := time.perf_counter()) < t_end:
            tally = measured if sent >= t0 else warm
            clip = clips[k % len(clips)]
            k += 1
            try:
                response = await http.post(url + RECOGNIZE, content=clip.wav, headers={"Content-Type": "audio/wav"})
                body = response.content
            except httpx.HTTPError as e:
                tally.lose(type(e).__name__)
                tally.last_done = time.perf_counter()
                continue
            done = time.perf_counter()
            tally.latencies_s.append(done - sent)
            tally.last_done = done
            tally.status[response.status_code] = tally.status.get(response.status_code, 0) + 1
            if response.status_code >= 400:
                continue
            try:
                label = json.loads(body)["label"]
                if not isinstance(label, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                tally.lose(f"bad answer (HTTP {response.status_code}, not JSON with a label)")
                continue
            tally.answered += 1
            tally.correct += label == clip.label

    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        await asyncio.gather(*(client(i, http) for i in clients))
    return warm, measured


def _load_process(job: tuple) -> tuple[Tally, Tally]:
    return asyncio.run(load(*job))


def load_in_processes(url: str, clips: list[Clip], n_clients: int, n_processes: int, warmup_s: float, seconds: float,
                      timeout_s: float) -> tuple[Tally, Tally, float, float]:
    """Spread the clients over processes; merged warm-up and measured tallies, the measured start,
    and the CPU seconds the load-generator processes used."""
    import multiprocessing
    import resource

    start = time.perf_counter() + 1.0  # every process is up by then
    bounds = np.linspace(0, n_clients, n_processes + 1).astype(int)
    jobs = [(url, clips, range(a, b), n_clients, start, warmup_s, seconds, timeout_s) for a, b in zip(bounds, bounds[1:])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # fork: the clips are in memory already; the server subprocess is not a child of the pool.
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        tallies = pool.map(_load_process, jobs)
        pool.close()
        pool.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    warm, measured = Tally(), Tally()
    for w, m in tallies:
        warm.merge(w)
        measured.merge(m)
    return warm, measured, start + warmup_s, cpu_s


def summarise(t: Tally, t0: float) -> dict:
    lat = np.asarray(t.latencies_s) * 1000
    elapsed = max(t.last_done - t0, 1e-9)
    pct = (lambda q: round(float(np.percentile(lat, q)), 1)) if len(lat) else (lambda q: None)
    return {
        "requests": t.n_requests,
        "answered_with_label": t.answered,
        "elapsed_s": round(elapsed, 2),
        "throughput_rps": round(len(lat) / elapsed, 1),
        "latency_ms": {"p50": pct(50), "p95": pct(95), "p99": pct(99), "max": round(float(lat.max()), 1) if len(lat) else None,
                       "mean": round(float(lat.mean()), 1) if len(lat) else None},
        "status_counts": {str(k): v for k, v in sorted(t.status.items())},
        "n_5xx": t.n_5xx,
        "n_4xx": t.n_4xx,
        "lost": t.n_lost,
        "lost_by_reason": dict(sorted(t.lost.items())),
        "accuracy": round(t.correct / t.answered, 4) if t.answered else None,
    }


def machine() -> dict:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        **{name: version(name) for name in ("audiorec", "fastapi", "uvicorn", "starlette", "onnxruntime", "httpx2")},
    }


def markdown(r: dict) -> str:
    m, lat, mc = r["measured"], r["measured"]["latency_ms"], r["machine"]
    memory = f"{r['server_peak_rss_mib']:.0f} MiB" if r.get("server_peak_rss_mib") else "not read"
    rows = [
        ("requests completed", f"{m['requests']} in {r['seconds']:g} s ({r['clients']} concurrent clients in "
                               f"{r['load_processes']} processes, {r['warmup_s']:g} s warm-up not counted)"),
        ("throughput", f"{m['throughput_rps']:.1f} requests/s"),
        ("latency p50 / p95 / p99 / max", f"{lat['p50']:.1f} / {lat['p95']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f} ms"),
        ("5xx / lost (target 0 / 0)", f"{m['n_5xx']} / {m['lost']}"),
        ("4xx", f"{m['n_4xx']}"),
        ("accuracy under load", f"{m['accuracy']:.4f} ({m['answered_with_label']} answers)" if m["accuracy"] is not None else "n/a"),
        ("server peak resident memory (VmHWM)", memory),
    ]
    cpu = r.get("cpu_use", {})
    if "server_cpu_cores" in cpu:
        rows.append(("CPU used: server / load generator", f"{cpu['server_cpu_cores']:.2f} / "
                     f"{cpu['load_generator_cpu_cores']:.2f} cores of {mc['cpu_count']}"))
    lines = ["| measure | result |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    lines.append(
        f"\n`audiorec serve {r['model']} --workers {r['workers']}`, clips: {r['n_clips']} clips of `{r['clips']}` "
        f"({r['clips_note']}), POSTed as raw `audio/wav` bodies. Machine: {mc['processor']}, {mc['cpu_count']} cores, "
        f"{mc['platform']}; Python {mc['python']}, FastAPI {mc['fastapi']}, uvicorn {mc['uvicorn']}, "
        f"ONNX Runtime {mc['onnxruntime']}. The load generator (httpx2, {r['load_processes']} processes) runs on the same "
        f"{mc['cpu_count']}-core machine as the server and competes with it for the CPU, so these figures are a "
        f"lower bound for the server alone. Command: `{r['command']}`.")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model to serve: .onnx file or run directory "
                        "(default: %(default)s)")
    parser.add_argument("--clips", default=str(DEFAULT_CLIPS), help="JSON Lines manifest of labelled clips "
                        "(rows with 'path' and 'label'; default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="the server's --workers, threads that decode and "
                        "recognise (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="load-generator processes the "
                        "clients are spread over (default: one per core, %(default)s)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the measured period (default: %(default)s)")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="uncounted warm-up before it (default: %(default)s)")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="per-request timeout of the clients; a request "
                        "taking longer is lost (default: %(default)s)")
    parser.add_argument("--server-timeout-s", type=float, help="the server's --timeout-s (default: the server's own)")
    parser.add_argument("--results", default=str(RESULTS / "serve_load"), help="results path without suffix; "
                        ".json and .md are written (default: %(default)s)")
    args = parser.parse_args()
    if min(args.clients, args.workers, args.processes) < 1 or args.seconds <= 0 or args.warmup_s < 0 or args.timeout_s <= 0:
        parser.error("--clients, --workers and --processes must be >= 1, --seconds and --timeout-s > 0, --warmup-s >= 0")
    args.processes = min(args.processes, args.clients)
    model, manifest = Path(args.model), Path(args.clips)
    if not model.exists():
        parser.error(f"--model {model}: no such file or directory (benchmarks/export_runtime.py exports it)")
    if not Path(sys.executable).with_name("audiorec").is_file():
        parser.error(f"no audiorec command next to {sys.executable}; run with the project's .venv/bin/python")

    clips, clips_note = load_clips(manifest)
    print(f"{len(clips)} clips from {manifest} ({clips_note}); "
          f"{sum(len(c.wav) for c in clips) / 2**20:.1f} MiB in memory", flush=True)

    server = Server(model, args.workers, args.server_timeout_s)
    memory: dict = {}
    try:
        ready_s = server.wait_ready()
        print(f"server up at {server.url} in {ready_s:.1f} s: {shlex.join(server.command)}", flush=True)
        print(f"{args.clients} clients, {args.warmup_s:g} s warm-up + {args.seconds:g} s measured ...", flush=True)
        server_cpu, wall = cpu_seconds(server.proc.pid), time.perf_counter()
        warm, measured, t0, load_cpu_s = load_in_processes(server.url, clips, args.clients, args.processes,
                                                           args.warmup_s, args.seconds, args.timeout_s)
        wall = time.perf_counter() - wall
        cpu = {"load_wall_s": round(wall, 1), "load_generator_cpu_cores": round(load_cpu_s / wall, 2)}
        if server_cpu is not None and (server_cpu_end := cpu_seconds(server.proc.pid)) is not None:
            cpu["server_cpu_cores"] = round((server_cpu_end - server_cpu) / wall, 2)
        memory = peak_rss_mib(server.proc.pid)
        alive = server.proc.poll() is None
    finally:
        code = server.stop()
    output = server.output()

    results = {
        "command": shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])),
        "server_command": shlex.join(server.command),
        "model": relative(model),
        "clips": relative(manifest),
        "n_clips": len(clips),
        "clips_note": clips_note,
        "workers": args.workers,
        "clients": args.clients,
        "load_processes": args.processes,
        "seconds": args.seconds,
        "warmup_s": args.warmup_s,
        "client_timeout_s": args.timeout_s,
        "server_ready_s": round(ready_s, 2),
        "measured": summarise(measured, t0),
        "warmup": summarise(warm, t0 - args.warmup_s),
        **memory,
        "cpu_use": cpu,
        "server_alive_at_end": alive,
        "server_exit_code": code,
        "machine": machine(),
        "note": "load generator and server share the machine; the figures are a lower bound for the server alone",
    }
    m, w = results["measured"], results["warmup"]
    failures = m["n_5xx"] + m["lost"] + w["n_5xx"] + w["lost"]
    results["passed"] = failures == 0 and alive

    target = Path(args.results)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    target.with_suffix(".md").write_text(markdown(results))

    lat = m["latency_ms"]
    print(f"requests {m['requests']} ({m['throughput_rps']:.1f}/s), latency p50 {lat['p50']} / p95 {lat['p95']} / "
          f"p99 {lat['p99']} / max {lat['max']} ms; 5xx {m['n_5xx']}, lost {m['lost']}, 4xx {m['n_4xx']}; "
          f"accuracy {m['accuracy']}; server peak RSS {memory.get('server_peak_rss_mib', '?')} MiB")
    if w["n_5xx"] or w["lost"]:
        print(f"warm-up: 5xx {w['n_5xx']}, lost {w['lost']} {w['lost_by_reason']}")
    if m["lost"]:
        print(f"lost by reason: {m['lost_by_reason']}")
    if not alive:
        print(f"the server died during the run; its output:\n{output}", file=sys.stderr)
    elif failures:
        print(f"server output (tail):\n{output[-2000:]}", file=sys.stderr)
    print(f"wrote {target.with_suffix('.json')} and {target.with_suffix('.md')}")
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
