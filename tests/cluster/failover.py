#!/usr/bin/env python3
"""Issue 19's acceptance harness: Tributary workers sharing cameras through Redis leases, with
fenced publishing, on hosts made of network namespaces (tests/cluster/netns.sh).

An independent checker: it knows the binary only through its CLI, its REST API, /metrics and the
Redis keys and stream that the interface (cluster spec) describes. No Swift, no redis-py (a small
RESP client below), so it runs with /usr/bin/python3 or .deps/checkers/bin/python alike. Root is
needed (namespaces).

    python3 tests/cluster/failover.py [--binary .build/debug/tributary] [--summary FILE]
                                      [--cases 1,2,3,4,5,6] [--keep] [--run-id ID] [--preflight]

Hosts (10.77.0.0/24): redis .2 (redis-server, AOF on), cam .3 (three RTSP cameras), probe .5 (this
process: its sampler reads Redis and every worker's REST API from there), w1..w4 .11-.14.

Every 200 ms the sampler reads the lease keys from Redis and each live worker's get-stream-info;
a reader follows the metadata stream (XREAD). The cases, in order, each bounded in time:
  1 start: all 6 cameras owned (a lease in Redis, listed by its owner) within 10 s, <= capacity
  2 SIGKILL a worker: its cameras' first metadata from a new owner within 10 s of the kill;
    frame numbers keep increasing (gap reported); the worker is started again and rejoins
  3 SIGSTOP a worker 15 s, SIGCONT: it drops the cameras claimed elsewhere within ~1 s, none of its
    old epochs publish after the claim (fenced), it gets cameras again (new epochs) within ~15 s
  4 the same with its veth cut 15 s (network partition), then mended
  5 a fourth worker joins: within ~15 s every worker <= ceil(6/4)+1, the new one >= 1
  6 Redis down 8 s (SIGTERM, restarted on the same AOF dir): the workers stop their cameras at their
    lease deadline (~4 s), all 6 owned again within ~15 s of its return
Checked at every sample, in every case: never one camera listed by two workers (a worker just
resumed or reconnected is excused for GRACE_S + SLACK_S), never more than --capacity on one worker,
no worker running a camera whose Redis lease is another's (or another epoch) for longer than a
second; in the stream, per camera: frame numbers strictly increase (an entry repeated by the same
owner with the same message_id is at-least-once delivery: noted, not failed), epochs never go back,
one worker per epoch. After each case ("settle"): all 6 owned, every running worker has one, and
every lease's first metadata entry comes within FLOW_BOUND_S of the lease being seen. Last
("stop"): SIGTERM each worker, exit 143 expected and its leases released.

Behaviour unlike the spec that the acceptance criteria above do not cover (a get-stream-info
stream without the lease fields, …) is listed under "Behaviour unlike the spec" in the summary without failing it.
Redis runs with --protected-mode no besides the spec's flags (Redis 7 refuses clients that are not
on its loopback otherwise).

Exits 0 only if every case selected held. The summary (markdown) is printed and written to --summary.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait as futures_wait
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NETNS = os.path.join(HERE, "netns.sh")

REDIS_ADDR, REDIS_PORT = "10.77.0.2", 6379
REDIS_URL = f"redis://{REDIS_ADDR}:{REDIS_PORT}"
CAM_ADDR = "10.77.0.3"
WORKER_ADDR = {"w1": "10.77.0.11", "w2": "10.77.0.12", "w3": "10.77.0.13", "w4": "10.77.0.14"}
API_PORT = 9000
RTSP_PORTS = [8554, 8555, 8556]
STREAM = "mdx-raw"
CAPACITY = 4

SAMPLE_PERIOD_S = 0.2
HTTP_TIMEOUT_S = 0.5
# Timing bounds (the brief's figures; SLACK_S covers the sampling period and one HTTP round trip).
START_BOUND_S = 10.0        # case 1: all owned after the workers start
FAILOVER_BOUND_S = 10.0     # case 2: kill -> first metadata from the new owner
GRACE_S = 1.0               # case 3/4: a resumed worker drops the cameras claimed elsewhere
SLACK_S = 0.5
REGAIN_BOUND_S = 15.0       # case 3/4: the resumed worker has cameras again
PAUSE_S = 15.0              # case 3/4: how long it is stopped / cut off
JOIN_BOUND_S = 15.0         # case 5
REDIS_DOWN_S = 8.0          # case 6
REDIS_STOP_BOUND_S = 6.0    # case 6: lease deadline 4 s after the last renewal (<= 2 s before the stop)
REDIS_RECOVER_BOUND_S = 15.0
DISAGREE_BOUND_S = 1.0      # a worker runs a camera whose Redis lease is not its own
FLOW_BOUND_S = 8.0          # a lease's first metadata entry after the lease is seen (pipeline start, RTSP connect)
FLOW_WAIT_S = 20.0          # how long the harness waits to measure that


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------------------------------
# A minimal Redis client (RESP2), enough for MGET, XREAD, PING, KEYS, GET.

class RedisError(Exception):
    pass


class Resp:
    def __init__(self, host: str, port: int, timeout: float = 1.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = None
        self.rf = None

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = self.rf = None

    def _connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rf = self.sock.makefile("rb")

    @staticmethod
    def _encode(args) -> bytes:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def _read(self):
        line = self.rf.readline()
        if not line:
            raise ConnectionError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.rf.read(n + 2)
            if len(data) != n + 2:
                raise ConnectionError("short read")
            return data[:-2].decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise ConnectionError(f"bad reply {line[:40]!r}")

    def pipeline(self, commands, timeout: float | None = None):
        """Sends the commands, returns their replies (errors as RedisError values). Raises
        OSError/ConnectionError when Redis cannot be reached; the connection is dropped then."""
        try:
            if self.sock is None:
                self._connect()
            self.sock.settimeout(timeout or self.timeout)
            self.sock.sendall(b"".join(self._encode(c) for c in commands))
            return [self._read() for _ in commands]
        except (OSError, ConnectionError, ValueError):
            self.close()
            raise

    def call(self, *args, timeout: float | None = None):
        reply = self.pipeline([args], timeout)[0]
        if isinstance(reply, RedisError):
            raise reply
        return reply


# --------------------------------------------------------------------------------------------------
# Network namespaces: this process samples from the probe host (setns on the main thread before any
# thread starts, so every thread and socket of it lives there); it goes back before the teardown.

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def setns_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def netns(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([NETNS, *args], capture_output=True, text=True, check=check, timeout=60)


# --------------------------------------------------------------------------------------------------

_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = HTTP_TIMEOUT_S) -> bytes:
    with _http.open(url, timeout=timeout) as r:
        return r.read()


def metric_value(text: str, name: str) -> float | None:
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name) and (len(line) == len(name) or line[len(name)] in " {"):
            try:
                total += float(line.rsplit(None, 1)[1])
                seen = True
            except (ValueError, IndexError):
                pass
    return total if seen else None


@dataclass
class Worker:
    wid: str
    addr: str
    ns: str
    spool: str
    logpath: str
    proc: subprocess.Popen | None = None
    state: str = "new"          # running, stopped, cut, killed, exited, terminated
    incarnations: int = 0
    fenced_before: float = 0.0  # the counter summed over earlier (killed) incarnations
    fenced_last: float | None = None
    started_at: float = 0.0

    @property
    def api(self) -> str:
        return f"http://{self.addr}:{API_PORT}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def fenced_total(self) -> float | None:
        if self.fenced_last is None and self.fenced_before == 0:
            return None
        return self.fenced_before + (self.fenced_last or 0.0)


@dataclass
class Sample:
    t: float
    redis: dict | None               # camera -> (worker, epoch) for present leases; None: unreadable
    epochs: dict | None              # camera -> int (tributary:epoch:<camera>)
    workers: dict                    # worker id -> {camera: stream dict} for the workers that answered
    polled: list                     # worker ids asked


@dataclass
class Entry:
    ms: int
    seq: int
    worker: str | None
    epoch: int | None
    frame: int | None
    message_id: str | None = None


@dataclass
class CaseResult:
    name: str
    title: str
    start: float = 0.0
    end: float = 0.0
    ok: bool = True
    skipped: bool = False
    timing: str = ""
    gaps: str = ""
    fenced: str = ""
    notes: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    max_owners: int = 0         # not counting a just-resumed worker within its grace
    max_owners_raw: int = 0
    samples: int = 0

    def fail(self, msg: str) -> None:
        self.ok = False
        self.failures.append(f"case {self.name}: {msg}")
        log(f"FAIL case {self.name}: {msg}")


class Harness:
    def __init__(self, args):
        self.args = args
        self.binary = os.path.abspath(args.binary)
        self.run_id = args.run_id or "".join(random.choices(string.ascii_lowercase + string.digits, k=4))
        self.workdir = args.workdir or tempfile.mkdtemp(prefix=f"tributary-cluster-{self.run_id}-")
        os.makedirs(self.workdir, exist_ok=True)
        self.redis_dir = os.path.join(self.workdir, "redis")
        os.makedirs(self.redis_dir, exist_ok=True)
        self.cameras = {}  # id -> url
        for i, port in enumerate(RTSP_PORTS, 1):
            self.cameras[f"rtsp{i}"] = f"rtsp://{CAM_ADDR}:{port}/camera"
        media = os.path.join(REPO, "media", "sample_720p_h264.mp4")
        for i in range(1, 4):
            self.cameras[f"file{i}"] = f"file://{media}"
        self.cam_ids = sorted(self.cameras)
        self.workers = {w: Worker(w, WORKER_ADDR[w], self.ns(w), os.path.join(self.workdir, f"spool-{w}"),
                                  os.path.join(self.workdir, f"{w}.log")) for w in WORKER_ADDR}
        self.redis_proc = None
        self.cam_procs = []
        self.lock = threading.Lock()
        self.samples: list[Sample] = []
        self.entries: dict[str, list[Entry]] = {c: [] for c in self.cam_ids}
        self.stream_notes: list[str] = []
        self.stop_event = threading.Event()
        self.threads = []
        self.pool = None
        self.orig_ns_fd = None
        self.in_probe = False
        self.cases: list[CaseResult] = []
        self.grace: list[tuple[str, float, float]] = []   # (worker, from, to): stale listings excused
        self.spec_notes: list[str] = []
        self.spec_keys: set = set()
        self.t0 = time.time()
        self.last_entry_id = "0-0"
        self.reader_errors = 0

    def ns(self, host: str) -> str:
        return f"tb{self.run_id}-{host}"

    # ---------------------------------------------------------------------------------------------- setup

    def up(self) -> None:
        log(f"run {self.run_id}, workdir {self.workdir}")
        out = netns("up", self.run_id)
        log(out.stdout.strip())
        self.orig_ns_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        setns_path(f"/run/netns/{self.ns('probe')}")
        self.in_probe = True

    def spawn(self, host: str, argv: list[str], logpath: str) -> subprocess.Popen:
        f = open(logpath, "ab")
        # `ip netns exec` execs the command itself: the PID is the program's.
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(host), *argv], stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        f.close()
        return p

    def start_redis(self) -> None:
        logpath = os.path.join(self.workdir, "redis.log")
        self.redis_proc = self.spawn("redis", ["redis-server", "--appendonly", "yes", "--dir", self.redis_dir,
                                               "--bind", REDIS_ADDR, "--port", str(REDIS_PORT), "--save", "",
                                               # else Redis 7 denies every client not on its loopback
                                               "--protected-mode", "no", "--daemonize", "no"], logpath)
        deadline = time.time() + 10
        r = Resp(REDIS_ADDR, REDIS_PORT, 0.5)
        while time.time() < deadline:
            try:
                if r.call("PING") == "PONG":
                    r.close()
                    return
            except (OSError, ConnectionError, RedisError):
                pass
            if self.redis_proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"redis-server did not answer (see {logpath})")

    def start_cameras(self) -> None:
        script = os.path.join(REPO, "tests", "python", "rtsp_camera.py")
        for port in RTSP_PORTS:
            logpath = os.path.join(self.workdir, f"camera-{port}.log")
            self.cam_procs.append(self.spawn("cam", ["/usr/bin/python3", script, "--address", CAM_ADDR,
                                                     "--port", str(port)], logpath))
        deadline = time.time() + 15
        for port in RTSP_PORTS:
            logpath = os.path.join(self.workdir, f"camera-{port}.log")
            while "ready" not in open(logpath, errors="replace").read():
                if time.time() > deadline:
                    raise RuntimeError(f"RTSP camera on port {port} not ready (see {logpath})")
                time.sleep(0.1)

    def register_cameras(self) -> None:
        for cid in self.cam_ids:
            cmd = [self.binary, "cameras", "add", "--redis", REDIS_URL, "--camera-id", cid,
                   "--camera-url", self.cameras[cid], "--camera-name", f"camera {cid}"]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            if p.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} -> {p.returncode}: {p.stdout}{p.stderr}")
        p = subprocess.run([self.binary, "cameras", "list", "--redis", REDIS_URL], capture_output=True,
                           text=True, timeout=30)
        listed = []
        for line in p.stdout.splitlines():
            try:
                listed.append(json.loads(line)["camera_id"])
            except (ValueError, KeyError, TypeError):
                self.spec_notes.append(f"`cameras list` printed a line that is no JSON object with camera_id: {line!r}")
        if sorted(listed) != self.cam_ids:
            raise RuntimeError(f"`cameras list` shows {sorted(listed)}, expected {self.cam_ids} (rc {p.returncode}, "
                               f"stderr {p.stderr.strip()[:300]})")
        log(f"registered {len(self.cam_ids)} cameras: {', '.join(self.cam_ids)}")

    def start_worker(self, wid: str) -> None:
        w = self.workers[wid]
        os.makedirs(w.spool, exist_ok=True)
        argv = [self.binary, "worker", "--redis", REDIS_URL, "--worker-id", wid, "--capacity", str(CAPACITY),
                "--api-address", w.addr, "--api-port", str(API_PORT), "--no-detector", "--file-loop",
                "--real-time", "--width", "640", "--height", "360", "--rtsp-reconnect-interval", "2",
                "--meta-spool", w.spool]
        with open(w.logpath, "a") as f:
            f.write(f"==== incarnation {w.incarnations + 1}: {' '.join(argv)}\n")
        w.proc = self.spawn(wid, argv, w.logpath)
        w.incarnations += 1
        w.fenced_last = None
        w.state = "running"
        w.started_at = time.time()
        log(f"started {wid} (pid {w.proc.pid})")

    def wait_serving(self, wid: str, timeout: float = 30.0) -> None:
        w = self.workers[wid]
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(w.logpath, errors="replace") as f:
                text = f.read()
            part = text.rsplit("==== incarnation", 1)[-1]
            if "Serving the REST API" in part:
                return
            if w.proc.poll() is not None:
                raise RuntimeError(f"{wid} exited with {w.proc.returncode} at the start:\n{tail(w.logpath)}")
            time.sleep(0.1)
        raise RuntimeError(f"{wid} printed no 'Serving the REST API' line in {timeout:.0f} s:\n{tail(w.logpath)}")

    # ---------------------------------------------------------------------------------------------- sampling

    def start_threads(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=8)
        for target in (self.sampler, self.reader):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self.threads.append(t)

    def read_redis(self, r: Resp):
        cmds = [["MGET", *[f"tributary:lease:{c}" for c in self.cam_ids]],
                ["MGET", *[f"tributary:epoch:{c}" for c in self.cam_ids]]]
        leases_raw, epochs_raw = r.pipeline(cmds, timeout=HTTP_TIMEOUT_S)
        if isinstance(leases_raw, RedisError) or isinstance(epochs_raw, RedisError):
            raise ConnectionError(str(leases_raw if isinstance(leases_raw, RedisError) else epochs_raw))
        leases, epochs = {}, {}
        for c, v in zip(self.cam_ids, leases_raw):
            if v is None:
                continue
            wk, _, ep = v.rpartition("/")
            try:
                leases[c] = (wk, int(ep))
            except ValueError:
                leases[c] = (v, None)
                self.note_spec(f"lease value of {c} is {v!r}, not \"<worker_id>/<epoch>\"")
        for c, v in zip(self.cam_ids, epochs_raw):
            if v is not None:
                try:
                    epochs[c] = int(v)
                except ValueError:
                    self.note_spec(f"tributary:epoch:{c} is {v!r}, not an integer")
        return leases, epochs

    def stream_info(self, wid: str):
        body = http_get(f"{self.workers[wid].api}/api/v1/stream/get-stream-info")
        doc = json.loads(body)
        streams = doc.get("stream-info", {}).get("stream-info", [])
        out = {}
        for s in streams:
            cid = s.get("camera_id")
            out[cid] = s
            missing = [k for k in ("lease_worker", "lease_epoch", "owned_since_ms", "lease_reason") if k not in s]
            if missing:
                case = self.cases[-1].name if self.cases else "-"
                self.note_spec(f"get-stream-info of {wid} (case {case}, {self.workers[wid].state}): camera {cid} "
                               f"(state {s.get('state')!r}) without {', '.join(missing)}", key=(wid, case, cid))
        return out

    def note_spec(self, msg: str, key=None) -> None:
        key = key or msg
        with self.lock:
            if key not in self.spec_keys:
                self.spec_keys.add(key)
                self.spec_notes.append(msg)
                log(f"SPEC: {msg}")

    def sampler(self) -> None:
        r = Resp(REDIS_ADDR, REDIS_PORT, HTTP_TIMEOUT_S)
        next_t = time.time()
        while not self.stop_event.is_set():
            t = time.time()
            polled = [w.wid for w in self.workers.values() if w.alive()]
            futs = {wid: self.pool.submit(self.stream_info, wid) for wid in polled}
            redis_state, epochs = None, None
            try:
                redis_state, epochs = self.read_redis(r)
            except (OSError, ConnectionError, RedisError):
                r.close()
            futures_wait(list(futs.values()), timeout=HTTP_TIMEOUT_S + 0.1)
            answers = {}
            for wid, f in futs.items():
                if f.done() and f.exception() is None:
                    answers[wid] = f.result()
            with self.lock:
                self.samples.append(Sample(t, redis_state, epochs, answers, polled))
            next_t += SAMPLE_PERIOD_S
            delay = next_t - time.time()
            if delay < 0:
                next_t = time.time()
            else:
                self.stop_event.wait(delay)
        r.close()

    def reader(self) -> None:
        r = Resp(REDIS_ADDR, REDIS_PORT, 2.0)
        while not self.stop_event.is_set():
            try:
                reply = r.call("XREAD", "COUNT", 2000, "BLOCK", 500, "STREAMS", STREAM, self.last_entry_id,
                               timeout=3.0)
            except RedisError as e:
                if "LOADING" not in str(e):
                    self.reader_errors += 1
                r.close()
                self.stop_event.wait(0.3)
                continue
            except (OSError, ConnectionError):
                self.stop_event.wait(0.3)
                continue
            if not reply:
                continue
            for _stream, items in reply:
                batch = []
                for entry_id, flat in items:
                    fields = dict(zip(flat[0::2], flat[1::2]))
                    ms, _, seq = entry_id.partition("-")
                    cam = fields.get("key")
                    worker = epoch = frame = message_id = None
                    try:
                        headers = json.loads(fields.get("headers") or "{}")
                        worker, epoch = headers.get("worker"), headers.get("epoch")
                    except ValueError:
                        pass
                    try:
                        value = json.loads(fields.get("value") or "{}")
                        frame = value.get("frame_number")
                        message_id = value.get("message_id")
                        cam = cam or value.get("camera_id")
                        if value.get("camera_id") != fields.get("key"):
                            self.note_spec(f"stream entry {entry_id}: key {fields.get('key')!r} vs value.camera_id "
                                           f"{value.get('camera_id')!r}")
                    except ValueError:
                        pass
                    if worker is None or epoch is None:
                        self.note_spec(f"stream entry {entry_id} ({cam}): headers {fields.get('headers')!r} lack "
                                       "worker/epoch")
                    batch.append((cam, Entry(int(ms), int(seq), worker, epoch, frame, message_id)))
                    self.last_entry_id = entry_id
                with self.lock:
                    for cam, e in batch:
                        self.entries.setdefault(cam, []).append(e)
        r.close()

    def latest(self) -> Sample | None:
        with self.lock:
            return self.samples[-1] if self.samples else None

    def wait_sample_after(self, t: float) -> Sample | None:
        deadline = time.time() + 3
        while time.time() < deadline:
            s = self.latest()
            if s and s.t >= t:
                return s
            time.sleep(0.05)
        return self.latest()

    # ---------------------------------------------------------------------------------------------- predicates

    @staticmethod
    def counts(s: Sample) -> dict:
        return {w: len(cams) for w, cams in s.workers.items()}

    def all_owned(self, s: Sample) -> bool:
        """Every camera has a lease in Redis, and the lease's worker lists it (with that epoch)."""
        if s.redis is None:
            return False
        for c in self.cam_ids:
            if c not in s.redis:
                return False
            wk, ep = s.redis[c]
            listing = s.workers.get(wk)
            if listing is None or c not in listing:
                return False
            le = listing[c].get("lease_epoch")
            if le is not None and ep is not None and le != ep:
                return False
        return True

    def wait_for(self, pred, timeout: float, after: float | None = None) -> tuple[Sample | None, float | None]:
        """The first sample (taken at or after `after`) for which pred holds, within timeout."""
        after = after if after is not None else time.time()
        deadline = time.time() + timeout
        idx = 0
        while True:
            with self.lock:
                fresh = [s for s in self.samples[idx:] if s.t >= after]
                idx = len(self.samples)
            for s in fresh:
                if pred(s):
                    return s, s.t - after
            if time.time() > deadline:
                return None, None
            time.sleep(0.05)

    def fenced_counter(self, wid: str) -> float | None:
        try:
            text = http_get(f"{self.workers[wid].api}/metrics", timeout=1.0).decode("utf-8", "replace")
        except (OSError, urllib.error.URLError):
            return None
        v = metric_value(text, "tributary_fenced_publish_rejected_total")
        if v is None:
            self.note_spec(f"/metrics of {wid} has no tributary_fenced_publish_rejected_total")
        return v

    def refresh_fenced(self) -> str:
        parts = []
        for w in self.workers.values():
            if w.alive() and w.state == "running":
                v = self.fenced_counter(w.wid)
                if v is not None:
                    w.fenced_last = v
            tot = w.fenced_total()
            if w.incarnations:
                parts.append(f"{w.wid}:{'?' if tot is None else int(tot)}")
        return " ".join(parts)

    def owner_counts_str(self, s: Sample | None) -> str:
        if s is None:
            return "-"
        return " ".join(f"{w}:{len(s.workers[w])}" for w in sorted(s.workers))

    def check_alive(self, case: CaseResult) -> None:
        for w in self.workers.values():
            if w.state in ("running", "stopped", "cut") and w.proc is not None and w.proc.poll() is not None:
                case.fail(f"worker {w.wid} exited by itself (rc {w.proc.returncode}); log tail:\n{tail(w.logpath)}")
                w.state = "exited"

    def entries_of(self, cam: str) -> list[Entry]:
        with self.lock:
            return list(self.entries.get(cam, []))

    def settle(self, case: CaseResult, timeout: float = 20.0) -> bool:
        """After a case: all owned, every running worker has a camera, and every camera's metadata
        comes from its lease holder (worker and epoch) — a camera owned but not processed fails."""
        running = [w.wid for w in self.workers.values() if w.state == "running"]
        need = min(len(running), len(self.cam_ids))

        def pred(s):
            return self.all_owned(s) and sum(1 for w in running if s.workers.get(w)) >= need

        s, _ = self.wait_for(pred, timeout)
        if s is None:
            last = self.latest()
            case.fail(f"not settled {timeout:.0f} s after the case (all owned, each running worker >= 1): last sample "
                      f"t={rel(self, last.t)}: leases {last.redis}, workers {self.owner_counts_str(last)}")
            return False
        log(f"settled: {self.owner_counts_str(s)}")
        return self.check_flow(case, s)

    def lease_seen(self, cam: str, lease: tuple) -> float | None:
        """When the sampler first saw this lease (worker, epoch) of the camera in Redis."""
        with self.lock:
            for smp in self.samples:
                if smp.redis and smp.redis.get(cam) == lease:
                    return smp.t
        return None

    def check_flow(self, case: CaseResult, s: Sample) -> bool:
        """Every lease of sample s: metadata from its holder (worker and epoch) within FLOW_BOUND_S of the
        lease's first sighting — a camera owned but not published fails. Waits at most FLOW_WAIT_S to measure."""
        pending = {c: s.redis[c] for c in self.cam_ids if c in s.redis}
        seen = {c: self.lease_seen(c, lease) or s.t for c, lease in pending.items()}
        ok = True
        while pending:
            for c, lease in list(pending.items()):
                e = next((e for e in self.entries_of(c) if (e.worker, e.epoch) == lease), None)
                if e is not None:
                    delay = e.ms / 1000 - seen[c]
                    if delay > FLOW_BOUND_S:
                        ok = False
                        case.fail(f"camera {c}: first metadata of lease {lease[0]}/{lease[1]} {delay:.1f} s after the "
                                  f"lease was seen (bound {FLOW_BOUND_S:.0f} s), entry {e.ms}-{e.seq}")
                    del pending[c]
                    continue
                cur = self.latest().redis
                if cur is not None and cur.get(c) != lease:   # moved on (a handoff) without one entry
                    held_s = time.time() - seen[c]
                    if held_s > FLOW_BOUND_S:
                        ok = False
                        case.fail(f"camera {c}: lease {lease[0]}/{lease[1]} held from t={rel(self, seen[c])} for "
                                  f"{held_s:.1f} s without one metadata entry")
                    del pending[c]
                elif time.time() - seen[c] > FLOW_WAIT_S:
                    ok = False
                    case.fail(f"camera {c}: lease {lease[0]}/{lease[1]} (seen t={rel(self, seen[c])}): no metadata "
                              f"from it in {FLOW_WAIT_S:.0f} s")
                    del pending[c]
            if pending:
                time.sleep(0.2)
        return ok

    # ---------------------------------------------------------------------------------------------- cases

    def new_case(self, name: str, title: str) -> CaseResult:
        c = CaseResult(name, title, start=time.time())
        self.cases.append(c)
        log(f"---- case {name}: {title}")
        return c

    def case1(self, case: CaseResult, t_start: float) -> None:
        s, dt = self.wait_for(self.all_owned, START_BOUND_S + 20, after=t_start)
        if s is None:
            last = self.latest()
            case.fail(f"not all 6 cameras owned within {START_BOUND_S + 20:.0f} s of the start; last sample "
                      f"t={rel(self, last.t) if last else '-'}: leases {last.redis if last else '-'}, "
                      f"workers {self.owner_counts_str(last)}")
            case.timing = "> %.0f" % (START_BOUND_S + 20)
            return
        case.timing = f"{dt:.1f}"
        if dt > START_BOUND_S:
            case.fail(f"all 6 owned only {dt:.1f} s after the start (bound {START_BOUND_S:.0f} s), "
                      f"sample t={rel(self, s.t)}")
        log(f"all 6 owned {dt:.1f} s after the start: {self.owner_counts_str(s)}")
        self.settle(case)

    def pick(self, prefer: str, exclude=()) -> str | None:
        s = self.latest()
        cands = [w.wid for w in self.workers.values() if w.state == "running" and w.wid not in exclude]
        if s is None:
            return None
        if prefer in cands and s.workers.get(prefer):
            return prefer
        owned = sorted(((len(s.workers.get(w, {})), w) for w in cands), key=lambda x: (-x[0], x[1]))
        return owned[0][1] if owned and owned[0][0] > 0 else None

    def frame_gap(self, cam: str, old_worker: str, t_ms: float, new_filter) -> tuple[str, Entry | None, Entry | None]:
        es = self.entries_of(cam)
        before = [e for e in es if e.worker == old_worker and e.ms <= t_ms]
        after = [e for e in es if e.ms > t_ms and new_filter(e)]
        last_old = before[-1] if before else None
        first_new = after[0] if after else None
        if last_old is None or first_new is None or last_old.frame is None or first_new.frame is None:
            return f"{cam}:?", last_old, first_new
        return self.gap_text(cam, es, last_old, first_new), last_old, first_new

    def gap_text(self, cam: str, es: list[Entry], last_old: Entry, first_new: Entry) -> str:
        """'+N f / T s', and the frames the camera sent meanwhile: its rate (from its frame numbers over the
        3 s before) times the time between the two entries. The new owner continues at the last number + 1
        (docs/cluster.md): the gap is counted in time (get-stream-info's handover_gap_ms), not in numbers."""
        gap, dt = first_new.frame - last_old.frame, (first_new.ms - last_old.ms) / 1000
        text = f"{cam}:{gap:+d}f/{dt:.1f}s"
        ref = [e for e in es if e.worker == last_old.worker and e.epoch == last_old.epoch and e.frame is not None
               and last_old.ms - 3000 <= e.ms <= last_old.ms]
        if len(ref) >= 2 and ref[-1].ms > ref[0].ms:
            rate = (ref[-1].frame - ref[0].frame) / ((ref[-1].ms - ref[0].ms) / 1000)
            expected = rate * dt
            text += f" (~{expected:.0f}@{rate:.0f}fps)"
        return text

    def case2(self, case: CaseResult) -> None:
        wid = self.pick("w1")
        if wid is None:
            case.fail("no running worker owns a camera: nothing to kill")
            return
        w = self.workers[wid]
        s = self.latest()
        cams = sorted(s.workers.get(wid, {}))
        v = self.fenced_counter(wid)
        if v is not None:
            w.fenced_last = v
        kill_ms = time.time() * 1000
        os.kill(w.proc.pid, signal.SIGKILL)
        w.proc.wait(5)
        w.state = "killed"
        w.fenced_before += w.fenced_last or 0.0
        w.fenced_last = None
        log(f"SIGKILL {wid} (pid {w.proc.pid}), it ran {', '.join(cams)}")
        deadline = time.time() + FAILOVER_BOUND_S + 10
        first = {}
        while time.time() < deadline and len(first) < len(cams):
            for c in cams:
                if c in first:
                    continue
                for e in self.entries_of(c):
                    if e.ms > kill_ms and e.worker not in (wid, None):
                        first[c] = e
                        break
            time.sleep(0.1)
        times, gaps = [], []
        for c in cams:
            if c not in first:
                case.fail(f"camera {c}: no metadata from another worker within {FAILOVER_BOUND_S + 10:.0f} s "
                          f"of the SIGKILL of {wid}")
                continue
            dt = (first[c].ms - kill_ms) / 1000
            times.append(dt)
            if dt > FAILOVER_BOUND_S:
                case.fail(f"camera {c}: first metadata from {first[c].worker} {dt:.1f} s after the kill of {wid} "
                          f"(bound {FAILOVER_BOUND_S:.0f} s), entry {first[c].ms}-{first[c].seq}")
            g, last_old, first_new = self.frame_gap(c, wid, kill_ms, lambda e: e.worker not in (wid, None))
            gaps.append(g)
            if last_old and first_new and last_old.frame is not None and first_new.frame is not None \
                    and first_new.frame <= last_old.frame:
                case.fail(f"camera {c}: frame numbers go back across the failover: {wid} published "
                          f"{last_old.frame} (entry {last_old.ms}-{last_old.seq}), {first_new.worker} then "
                          f"{first_new.frame} (entry {first_new.ms}-{first_new.seq})")
        case.timing = f"{max(times):.1f}" if times else "-"
        case.gaps = " ".join(gaps)
        log(f"failover: {', '.join(f'{c}->{first[c].worker} {(first[c].ms - kill_ms) / 1000:.1f}s' for c in first)}")
        # the killed worker again, same id, same host
        t_restart = time.time()
        self.start_worker(wid)
        try:
            self.wait_serving(wid)
        except RuntimeError as e:
            case.fail(f"restart of {wid}: {e}")
            return
        s2, dt = self.wait_for(lambda s: bool(s.workers.get(wid)), 20, after=t_restart)
        if s2 is None:
            case.fail(f"restarted {wid} got no camera within 20 s")
        else:
            case.notes.append(f"{wid} restarted, has cameras after {dt:.1f} s")
        self.settle(case)

    def pause_case(self, case: CaseResult, mode: str, prefer: str, exclude=()) -> None:
        """Cases 3 (mode 'stop': SIGSTOP/SIGCONT) and 4 (mode 'cut': veth down/up)."""
        wid = self.pick(prefer, exclude)
        if wid is None:
            case.fail("no running worker owns a camera")
            return
        w = self.workers[wid]
        s = self.latest()
        held = {c: st.get("lease_epoch") for c, st in s.workers.get(wid, {}).items()}
        if s.redis:
            for c, (wk, ep) in s.redis.items():
                if wk == wid:
                    held.setdefault(c, ep)
        v = self.fenced_counter(wid)
        if v is not None:
            w.fenced_last = v
        fenced_at_start = v
        t_pause = time.time()
        if mode == "stop":
            os.kill(w.proc.pid, signal.SIGSTOP)
            w.state = "stopped"
            log(f"SIGSTOP {wid} for {PAUSE_S:.0f} s, it held {held}")
        else:
            netns("cut", self.run_id, wid)
            w.state = "cut"
            log(f"cut {wid}'s veth for {PAUSE_S:.0f} s, it held {held}")
        # while paused: when did each of its cameras get another owner (Redis lease)
        claimed: dict[str, tuple[float, str, int]] = {}
        idx = len(self.samples)
        while time.time() < t_pause + PAUSE_S:
            with self.lock:
                fresh = self.samples[idx:]
                idx = len(self.samples)
            for smp in fresh:
                if smp.redis is None or smp.t < t_pause:
                    continue
                for c in held:
                    if c not in claimed and c in smp.redis and smp.redis[c][0] != wid:
                        claimed[c] = (smp.t, smp.redis[c][0], smp.redis[c][1])
            time.sleep(0.1)
        t_resume = time.time()
        self.grace.append((wid, t_resume, t_resume + GRACE_S + SLACK_S))
        if mode == "stop":
            os.kill(w.proc.pid, signal.SIGCONT)
            log(f"SIGCONT {wid}; claimed elsewhere meanwhile: "
                f"{ {c: (v[1], v[2], round(v[0] - t_pause, 1)) for c, v in claimed.items()} }")
        else:
            netns("mend", self.run_id, wid)
            log(f"mended {wid}; claimed elsewhere meanwhile: "
                f"{ {c: (v[1], v[2], round(v[0] - t_pause, 1)) for c, v in claimed.items()} }")
        w.state = "running"
        for c in held:
            if c not in claimed:
                case.fail(f"camera {c}: held by {wid} (epoch {held[c]}) and not claimed by another worker during the "
                          f"{PAUSE_S:.0f} s {'stop' if mode == 'stop' else 'cut'}")
        # 1. within GRACE_S of the resumption, it lists none of the cameras claimed elsewhere
        def dropped(smp):
            listing = smp.workers.get(wid)
            return listing is not None and not any(c in listing and listing[c].get("lease_epoch") in (held[c], None)
                                                   for c in claimed)

        smp, dt = self.wait_for(dropped, GRACE_S + SLACK_S + 10, after=t_resume)
        if smp is None:
            last = self.latest()
            case.fail(f"{wid} still lists cameras claimed elsewhere ({', '.join(sorted(claimed))}) or does not answer "
                      f"{GRACE_S + SLACK_S + 10:.0f} s after the resumption (last sample t={rel(self, last.t)}: "
                      f"{sorted(last.workers.get(wid, {})) if wid in last.workers else 'no answer'})")
            t_clear = "> 11"
        else:
            t_clear = f"{dt:.1f}"
            if dt > GRACE_S + SLACK_S:
                case.fail(f"{wid} listed cameras claimed elsewhere until {dt:.1f} s after the resumption "
                          f"(bound ~{GRACE_S:.0f} s; sample t={rel(self, smp.t)})")
        # 2. it gets cameras again, with new epochs
        def regained(smp):
            listing = smp.workers.get(wid) or {}
            if smp.redis is None:
                return False
            for c, st in listing.items():
                ep = st.get("lease_epoch")
                if smp.redis.get(c) == (wid, ep) and (c not in held or held[c] is None or ep is None or ep > held[c]):
                    return True
            return False

        smp, dt_regain = self.wait_for(regained, REGAIN_BOUND_S + 10, after=t_resume)
        if smp is None:
            case.fail(f"{wid} got no camera with a new lease within {REGAIN_BOUND_S + 10:.0f} s of the resumption")
            t_regain = f"> {REGAIN_BOUND_S + 10:.0f}"
        else:
            t_regain = f"{dt_regain:.1f}"
            if dt_regain > REGAIN_BOUND_S:
                case.fail(f"{wid} got cameras again only {dt_regain:.1f} s after the resumption (bound "
                          f"~{REGAIN_BOUND_S:.0f} s)")
            again = ", ".join(f"{c}@{st.get('lease_epoch')}" for c, st in smp.workers[wid].items())
            case.notes.append(f"{wid} again: {again}")
        # 3. fenced: no entry from wid with an old epoch after the camera's claim elsewhere
        time.sleep(1.0)   # the stream reader catches up
        for c, (t_claim, new_w, new_ep) in claimed.items():
            es = self.entries_of(c)
            first_new = next((e for e in es if e.worker == new_w and e.epoch == new_ep), None)
            bound_ms = t_claim * 1000
            if first_new is not None:
                bound_ms = min(bound_ms, first_new.ms)
            bad = [e for e in es if e.worker == wid and e.epoch == held[c] and e.ms > bound_ms]
            if bad:
                case.fail(f"camera {c}: {len(bad)} entries from {wid} with its old epoch {held[c]} after {new_w}'s "
                          f"claim (epoch {new_ep}) — not fenced; first {bad[0].ms}-{bad[0].seq} frame {bad[0].frame}, "
                          f"{(bad[0].ms - bound_ms) / 1000:.1f} s after the claim")
        gaps = []
        for c, (t_claim, new_w, new_ep) in claimed.items():
            g, last_old, first_new = self.frame_gap(c, wid, t_pause * 1000, lambda e, ep=held[c]:
                                                    e.worker is not None and (e.worker, e.epoch) != (wid, ep))
            gaps.append(g)
            if last_old and first_new and last_old.frame is not None and first_new.frame is not None \
                    and first_new.frame <= last_old.frame:
                case.fail(f"camera {c}: frame numbers go back: {wid} published {last_old.frame} (entry "
                          f"{last_old.ms}-{last_old.seq}), {new_w} then {first_new.frame} (entry {first_new.ms}-"
                          f"{first_new.seq})")
        case.gaps = " ".join(gaps)
        v = self.fenced_counter(wid)
        if v is not None:
            w.fenced_last = v
        case.notes.append(f"{wid} tributary_fenced_publish_rejected_total {fenced_at_start} -> {v}")
        claim_times = [v[0] - t_pause for v in claimed.values()]
        case.timing = (f"claimed {max(claim_times):.1f} / dropped {t_clear} / regained {t_regain}"
                       if claim_times else f"dropped {t_clear} / regained {t_regain}")
        self.settle(case)

    def case5(self, case: CaseResult) -> None:
        t_join = time.time()
        self.start_worker("w4")
        try:
            self.wait_serving("w4")
        except RuntimeError as e:
            case.fail(str(e))
            return
        limit = math.ceil(len(self.cam_ids) / 4) + 1

        def balanced(s):
            running = [w.wid for w in self.workers.values() if w.state == "running"]
            return (all(w in s.workers for w in running) and all(len(s.workers[w]) <= limit for w in running)
                    and len(s.workers.get("w4", {})) >= 1 and self.all_owned(s))

        s, dt = self.wait_for(balanced, JOIN_BOUND_S + 10, after=t_join)
        if s is None:
            case.fail(f"not balanced (each <= {limit}, w4 >= 1, all owned) within {JOIN_BOUND_S + 10:.0f} s of w4's "
                      f"start; last: {self.owner_counts_str(self.latest())}")
            case.timing = f"> {JOIN_BOUND_S + 10:.0f}"
            return
        case.timing = f"{dt:.1f}"
        if dt > JOIN_BOUND_S:
            case.fail(f"balanced only {dt:.1f} s after w4's start (bound {JOIN_BOUND_S:.0f} s)")
        case.notes.append(f"balanced: {self.owner_counts_str(s)}")
        log(f"balanced {dt:.1f} s after w4's start: {self.owner_counts_str(s)}")
        self.settle(case)

    def case6(self, case: CaseResult) -> None:
        t_down = time.time()
        self.redis_proc.send_signal(signal.SIGTERM)
        try:
            rc = self.redis_proc.wait(10)
        except subprocess.TimeoutExpired:
            self.redis_proc.kill()
            rc = self.redis_proc.wait(5)
        log(f"redis-server stopped (SIGTERM, rc {rc}); down for {REDIS_DOWN_S:.0f} s")
        running = [w.wid for w in self.workers.values() if w.state == "running"]

        def all_stopped(s):
            return all(w in s.workers and not s.workers[w] for w in running)

        s, dt_stop = self.wait_for(all_stopped, REDIS_DOWN_S - 0.3, after=t_down)
        t_stop = f"{dt_stop:.1f}" if dt_stop is not None else f"> {REDIS_DOWN_S:.0f}"
        if s is None:
            last = self.latest()
            case.fail(f"the workers still run cameras while Redis has been down {REDIS_DOWN_S - 0.3:.1f} s "
                      f"(last sample t={rel(self, last.t)}: {self.owner_counts_str(last)})")
        elif dt_stop > REDIS_STOP_BOUND_S:
            case.fail(f"the workers stopped their cameras {dt_stop:.1f} s after Redis went down "
                      f"(lease deadline ~4 s, bound {REDIS_STOP_BOUND_S:.0f} s)")
        # per worker: when did it stop (for the report)
        per = []
        for w in running:
            s_w, d = self.wait_for(lambda s, w=w: w in s.workers and not s.workers[w], 0, after=t_down)
            if d is not None:
                per.append(f"{w} {d:.1f}s")
        if per:
            case.notes.append("stopped: " + ", ".join(per))
        while time.time() < t_down + REDIS_DOWN_S:
            time.sleep(0.05)
        t_up = time.time()
        self.start_redis()
        log(f"redis-server started again ({time.time() - t_up:.1f} s to answer)")
        s, dt = self.wait_for(self.all_owned, REDIS_RECOVER_BOUND_S + 10, after=t_up)
        if s is None:
            last = self.latest()
            case.fail(f"not all 6 owned within {REDIS_RECOVER_BOUND_S + 10:.0f} s of Redis' return (last: leases "
                      f"{last.redis}, workers {self.owner_counts_str(last)})")
            case.timing = f"stop {t_stop} / recover > {REDIS_RECOVER_BOUND_S + 10:.0f}"
            return
        case.timing = f"stop {t_stop} / recover {dt:.1f}"
        if dt > REDIS_RECOVER_BOUND_S:
            case.fail(f"all 6 owned again only {dt:.1f} s after Redis' return (bound {REDIS_RECOVER_BOUND_S:.0f} s)")
        log(f"all owned {dt:.1f} s after Redis' return: {self.owner_counts_str(s)}")
        self.settle(case)
        gaps = []
        for c in self.cam_ids:
            es = self.entries_of(c)
            before = [e for e in es if e.ms <= t_down * 1000]
            after = [e for e in es if e.ms >= t_up * 1000]
            if before and after and before[-1].frame is not None and after[0].frame is not None:
                gaps.append(self.gap_text(c, es, before[-1], after[0]))
            else:
                gaps.append(f"{c}:?")
        case.gaps = " ".join(gaps)

    def check_cameras_list(self) -> None:
        """`cameras list` shows each camera's owner and epoch as the leases in Redis say (a spec note if not)."""
        p = subprocess.run([self.binary, "cameras", "list", "--redis", REDIS_URL], capture_output=True, text=True,
                           timeout=30)
        r = Resp(REDIS_ADDR, REDIS_PORT, 1.0)
        try:
            leases, _ = self.read_redis(r)
        except (OSError, ConnectionError, RedisError):
            return
        finally:
            r.close()
        for line in p.stdout.splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue
            c = d.get("camera_id")
            want = leases.get(c)
            got = (d.get("owner"), d.get("epoch"))
            if want is not None and got != want:
                self.note_spec(f"`cameras list`: {c} owner/epoch {got}, Redis' lease {want[0]}/{want[1]} "
                               f"(line {line[:200]!r})", key=("list", c))

    def stop_case(self, case: CaseResult) -> None:
        """SIGTERM every worker: exit 143, leases released."""
        self.check_cameras_list()
        wids = [w.wid for w in self.workers.values() if w.alive()]
        t = time.time()
        for wid in wids:
            self.workers[wid].proc.send_signal(signal.SIGTERM)
        rcs = {}
        for wid in wids:
            w = self.workers[wid]
            try:
                rcs[wid] = w.proc.wait(max(1, 15 - (time.time() - t)))
            except subprocess.TimeoutExpired:
                case.fail(f"{wid} still runs 15 s after SIGTERM; SIGKILL")
                w.proc.kill()
                rcs[wid] = w.proc.wait(5)
            w.state = "terminated"
        for wid, rc in rcs.items():
            if rc != 143:
                case.fail(f"{wid} exited with {rc} after SIGTERM (spec: 143)")
        case.timing = f"{time.time() - t:.1f}"
        r = Resp(REDIS_ADDR, REDIS_PORT, 1.0)
        try:
            leases = r.call("KEYS", "tributary:lease:*")
            left = r.pipeline([["GET", k] for k in leases]) if leases else []
            held = [f"{k}={v}" for k, v in zip(leases, left) if isinstance(v, str) and v.split("/")[0] in wids]
            if held:
                case.fail(f"leases not released after SIGTERM: {', '.join(held)}")
        except (OSError, ConnectionError, RedisError) as e:
            case.fail(f"cannot read the leases after the stop: {e}")
        finally:
            r.close()
        case.notes.append("exit codes " + " ".join(f"{w}:{rc}" for w, rc in rcs.items()))

    # ---------------------------------------------------------------------------------------------- analysis

    def case_at(self, t: float) -> CaseResult | None:
        found = None
        for c in self.cases:
            if c.start <= t:
                found = c
        return found

    def excused(self, wid: str, t: float) -> bool:
        return any(w == wid and a <= t <= b for w, a, b in self.grace)

    def analyse(self) -> None:
        with self.lock:
            samples = list(self.samples)
            entries = {c: list(es) for c, es in self.entries.items()}
        for c in self.cases:
            nxt = [d.start for d in self.cases if d.start > c.start]
            c.end = min(nxt) if nxt else time.time()
        # per sample: owners per camera; capacity
        reported = set()
        graced: dict[tuple[str, str, str], list] = {}
        for s in samples:
            case = self.case_at(s.t)
            if case is None:
                continue
            case.samples += 1
            by_cam: dict[str, list[str]] = {}
            for w, cams in s.workers.items():
                for cam in cams:
                    by_cam.setdefault(cam, []).append(w)
                if len(cams) > CAPACITY:
                    case.fail(f"{w} lists {len(cams)} cameras (> capacity {CAPACITY}) at sample t={rel(self, s.t)}")
            for cam, ws in by_cam.items():
                case.max_owners_raw = max(case.max_owners_raw, len(ws))
                real = [w for w in ws if not self.excused(w, s.t)]
                case.max_owners = max(case.max_owners, len(real) if len(real) < len(ws) else len(ws))
                if len(ws) > 1:
                    key = (case.name, cam)
                    if len(real) > 1 or len(real) == len(ws):
                        if key not in reported:
                            reported.add(key)
                            detail = {w: (s.workers[w][cam].get("lease_worker"), s.workers[w][cam].get("lease_epoch"))
                                      for w in ws}
                            case.fail(f"camera {cam} listed by {', '.join(ws)} at sample t={rel(self, s.t)} "
                                      f"(their leases: {detail}; Redis: {s.redis.get(cam) if s.redis else 'unreadable'})")
                    else:
                        stale = ", ".join(w for w in ws if w not in real)
                        key = (case.name, cam, stale)
                        graced.setdefault(key, [s.t, s.t, 0])
                        graced[key][1] = s.t
                        graced[key][2] += 1
        for (cname, cam, stale), (a, b, n) in graced.items():
            case = next(c for c in self.cases if c.name == cname)
            case.notes.append(f"{cam} still listed by the just-resumed {stale} beside its new owner in {n} samples, "
                              f"t={rel(self, a)}..{rel(self, b)} (within the {GRACE_S + SLACK_S:.1f} s grace)")
        # a worker runs a camera whose lease in Redis is another's, longer than DISAGREE_BOUND_S
        runs: dict[tuple[str, str], float] = {}
        flagged = set()
        for s in samples:
            if s.redis is None:
                continue
            seen = set()
            for w, cams in s.workers.items():
                for cam, st in cams.items():
                    lease = s.redis.get(cam)
                    ep = st.get("lease_epoch")
                    agrees = lease is not None and lease[0] == w and (ep is None or lease[1] is None or lease[1] == ep)
                    if agrees:
                        continue
                    seen.add((w, cam))
                    first = runs.setdefault((w, cam), s.t)
                    if s.t - first > DISAGREE_BOUND_S + SAMPLE_PERIOD_S and (w, cam) not in flagged:
                        flagged.add((w, cam))
                        case = self.case_at(s.t)
                        if case:
                            case.fail(f"camera {cam}: {w} runs it (epoch {ep}) but Redis' lease says "
                                      f"{lease[0] + '/' + str(lease[1]) if lease else 'none'} for "
                                      f"{s.t - first:.1f} s (from t={rel(self, first)} to sample t={rel(self, s.t)})")
            for key in list(runs):
                # a run ends at a sample where the worker answered and agrees or no longer lists it
                w, cam = key
                if key not in seen and w in s.workers:
                    del runs[key]
                    flagged.discard(key)
        # the stream, per camera
        dups: dict[str, int] = {}
        for cam, es in entries.items():
            prev = None
            epoch_owner: dict[int, str] = {}
            max_epoch = None
            for e in es:
                case = self.case_at(e.ms / 1000)
                if case is None:
                    prev = e
                    continue
                if (prev is not None and e.frame is not None and e.frame == prev.frame and e.worker == prev.worker
                        and e.epoch == prev.epoch and e.message_id is not None and e.message_id == prev.message_id):
                    # at-least-once within one owner (a batch resent after a broken connection): reported only
                    dups[case.name] = dups.get(case.name, 0) + 1
                elif prev is not None and e.frame is not None and prev.frame is not None and e.frame <= prev.frame:
                    case.fail(f"camera {cam}: frame number {e.frame} (entry {e.ms}-{e.seq}, {e.worker}/{e.epoch}) "
                              f"after {prev.frame} (entry {prev.ms}-{prev.seq}, {prev.worker}/{prev.epoch})")
                if e.epoch is not None:
                    if max_epoch is not None and e.epoch < max_epoch:
                        case.fail(f"camera {cam}: entry {e.ms}-{e.seq} from {e.worker} with epoch {e.epoch} after "
                                  f"epoch {max_epoch} was published (a stale owner not fenced)")
                    max_epoch = e.epoch if max_epoch is None else max(max_epoch, e.epoch)
                    owner = epoch_owner.setdefault(e.epoch, e.worker)
                    if owner != e.worker:
                        case.fail(f"camera {cam}: epoch {e.epoch} published by {owner} and {e.worker} "
                                  f"(entry {e.ms}-{e.seq})")
                        epoch_owner[e.epoch] = e.worker
                prev = e
        for cname, n in dups.items():
            case = next(c for c in self.cases if c.name == cname)
            case.notes.append(f"{n} entries repeated by the same owner (same message_id, frame, epoch: at-least-once)")
        # keep failure lists short per case
        for c in self.cases:
            if len(c.failures) > 15:
                extra = len(c.failures) - 15
                c.failures = c.failures[:15] + [f"case {c.name}: … and {extra} more"]

    # ---------------------------------------------------------------------------------------------- report

    def summary(self, total_s: float) -> str:
        lines = ["# Tributary cluster acceptance (issue 19)", "",
                 f"binary `{self.binary}`, run `{self.run_id}`, {total_s:.0f} s in all, "
                 f"{len(self.samples)} samples every {SAMPLE_PERIOD_S * 1000:.0f} ms, "
                 f"{sum(len(v) for v in self.entries.values())} stream entries, workdir `{self.workdir}`", "",
                 "| case | result | time to failover / recovery (s) | max owners per camera | samples | fenced (per worker) | frame-number gaps |",
                 "|---|---|---|---|---|---|---|"]
        for c in self.cases:
            res = "skipped" if c.skipped else ("PASS" if c.ok else "FAIL")
            owners = str(c.max_owners) + (f" ({c.max_owners_raw} with the resumed one's last view)"
                                           if c.max_owners_raw > c.max_owners else "")
            lines.append(f"| {c.name} {c.title} | {res} | {c.timing or '-'} | {owners} | {c.samples} | "
                         f"{c.fenced or '-'} | {c.gaps or '-'} |")
        fails = [f for c in self.cases for f in c.failures]
        notes = [f"case {c.name}: {n}" for c in self.cases for n in c.notes]
        if fails:
            lines += ["", "## Failures", ""] + [f"- {f}" for f in fails]
        if self.spec_notes:
            lines += ["", "## Behaviour unlike the spec", ""] + [f"- {n}" for n in self.spec_notes[:30]]
        if notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
        ok = all(c.ok for c in self.cases) and self.cases
        lines += ["", f"**{'PASS' if ok else 'FAIL'}**", ""]
        return "\n".join(lines)

    # ---------------------------------------------------------------------------------------------- run

    def run(self, selected: set[str]) -> bool:
        t_begin = time.time()
        self.up()
        self.start_redis()
        log("redis-server answers at 10.77.0.2:6379")
        self.start_cameras()
        log(f"RTSP cameras ready on {CAM_ADDR}:{','.join(map(str, RTSP_PORTS))}")
        self.register_cameras()
        self.start_threads()
        case = self.new_case("1", "start: all owned, one owner each")
        t_start = time.time()
        for wid in ("w1", "w2", "w3"):
            self.start_worker(wid)
        for wid in ("w1", "w2", "w3"):
            try:
                self.wait_serving(wid)
            except RuntimeError as e:
                case.fail(str(e))
        if case.ok:
            self.case1(case, t_start)
        case.fenced = self.refresh_fenced()
        steps = [("2", "SIGKILL a worker", self.case2),
                 ("3", "SIGSTOP 15 s / SIGCONT", lambda c: self.pause_case(c, "stop", "w2")),
                 ("4", "veth cut 15 s / mend", lambda c: self.pause_case(c, "cut", "w3")),
                 ("5", "a fourth worker joins", self.case5),
                 ("6", "Redis down 8 s", self.case6)]
        for name, title, fn in steps:
            if name not in selected:
                continue
            case = self.new_case(name, title)
            try:
                fn(case)
            except Exception as e:  # noqa: BLE001 - a case that breaks is a failed case; the others go on
                case.fail(f"the harness broke: {e!r}\n{traceback.format_exc()}")
            self.check_alive(case)
            case.fenced = self.refresh_fenced()
        case = self.new_case("stop", "SIGTERM: exit 143, leases released")
        case.fenced = self.refresh_fenced()
        self.stop_case(case)
        self.stop_event.set()
        for t in self.threads:
            t.join(5)
        self.analyse()
        text = self.summary(time.time() - t_begin)
        print(text)
        if self.args.summary:
            with open(self.args.summary, "w") as f:
                f.write(text)
        return all(c.ok for c in self.cases)

    def cleanup(self) -> None:
        # a second Ctrl-C (or a SIGTERM forwarded by `timeout`) must not cut the teardown short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.stop_event.set()
        for t in self.threads:
            t.join(3)
        if self.pool:
            self.pool.shutdown(wait=False, cancel_futures=True)
        procs = [w.proc for w in self.workers.values() if w.proc is not None] + self.cam_procs + \
                ([self.redis_proc] if self.redis_proc else [])
        for p in procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                    p.terminate()
                except ProcessLookupError:
                    pass
        deadline = time.time() + 10
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if self.in_probe and self.orig_ns_fd is not None:
            if _libc.setns(self.orig_ns_fd, CLONE_NEWNET) != 0:
                log("cannot go back to the original network namespace")
            self.in_probe = False
        if self.args.keep:
            log(f"--keep: namespaces tb{self.run_id}-* left (tests/cluster/netns.sh down {self.run_id})")
        else:
            netns("down", self.run_id, check=False)
        log(f"logs: {self.workdir}")


def rel(h: Harness, t: float) -> str:
    return f"{t - h.t0:.1f}s"


def tail(path: str, n: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------------
# --preflight: the hosts alone, without the worker subcommand.

def preflight(args) -> bool:
    h = Harness(args)
    ok = True

    def check(name, cond, detail=""):
        nonlocal ok
        ok &= bool(cond)
        log(f"{'ok  ' if cond else 'FAIL'} {name}{': ' + detail if detail else ''}")

    try:
        h.up()
        h.start_redis()
        h.start_cameras()
        r = subprocess.run(["ip", "netns", "exec", h.ns("w1"), "redis-cli", "-h", REDIS_ADDR, "ping"],
                           capture_output=True, text=True, timeout=10)
        check("redis from w1 (redis-cli ping)", r.stdout.strip() == "PONG", r.stdout.strip() + r.stderr.strip())
        comm = open(f"/proc/{h.redis_proc.pid}/comm").read().strip()
        check("the PID kept is the program's", comm.startswith("redis-server"), comm)
        for port in RTSP_PORTS:
            r = subprocess.run(["ip", "netns", "exec", h.ns("w1"), "timeout", "15", "gst-launch-1.0", "-q", "rtspsrc",
                                f"location=rtsp://{CAM_ADDR}:{port}/camera", "protocols=tcp", "!", "rtph264depay",
                                "!", "h264parse", "!", "fakesink", "num-buffers=10"], capture_output=True, text=True)
            check(f"RTSP {CAM_ADDR}:{port} from w1 (10 frames)", r.returncode == 0, r.stderr.strip()[-200:])
        rc = Resp(REDIS_ADDR, REDIS_PORT, 0.5)
        check("redis from the probe (this process)", rc.call("PING") == "PONG")
        rc.close()
        netns("cut", h.run_id, "w1")
        r = subprocess.run(["ip", "netns", "exec", h.ns("w1"), "timeout", "3", "redis-cli", "-h", REDIS_ADDR, "ping"],
                           capture_output=True, text=True, timeout=10)
        check("cut w1: redis unreachable from w1", r.stdout.strip() != "PONG", f"rc {r.returncode}")
        r = subprocess.run(["ip", "netns", "exec", h.ns("w2"), "redis-cli", "-h", REDIS_ADDR, "ping"],
                           capture_output=True, text=True, timeout=10)
        check("cut w1: redis still reachable from w2", r.stdout.strip() == "PONG")
        netns("mend", h.run_id, "w1")
        time.sleep(0.3)
        r = subprocess.run(["ip", "netns", "exec", h.ns("w1"), "redis-cli", "-h", REDIS_ADDR, "ping"],
                           capture_output=True, text=True, timeout=10)
        check("mend w1: redis reachable again", r.stdout.strip() == "PONG")
    finally:
        pids = [p.pid for p in h.cam_procs] + ([h.redis_proc.pid] if h.redis_proc else [])
        h.cleanup()
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        check("teardown: no namespace of the run left", f"tb{h.run_id}-" not in left, left.strip())
        alive = [p for p in pids if os.path.exists(f"/proc/{p}")]
        check("teardown: no process left", not alive, str(alive))
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO, ".build", "debug", "tributary"))
    ap.add_argument("--summary")
    ap.add_argument("--keep", action="store_true", help="leave the namespaces (netns.sh down RUN_ID removes them)")
    ap.add_argument("--cases", default="1,2,3,4,5,6",
                    help="which of 2-6 to run (case 1, the start, always runs: the others need it)")
    ap.add_argument("--run-id", help="1-6 of [a-z0-9] (default: random)")
    ap.add_argument("--workdir", help="logs, Redis' AOF, spools (default: a new /tmp directory)")
    ap.add_argument("--preflight", action="store_true",
                    help="only the hosts: namespaces, redis and RTSP reachable from w1, cut/mend, teardown")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)   # also when started with SIGINT ignored (a background job)
    if args.preflight:
        return 0 if preflight(args) else 1
    selected = {c.strip() for c in args.cases.split(",") if c.strip()}
    if not selected <= {"1", "2", "3", "4", "5", "6"}:
        ap.error("--cases: a subset of 1,2,3,4,5,6")
    h = Harness(args)
    ok = False

    def partial_summary(why: str) -> None:
        """The cases run so far, and why the run ended early, to --summary (best effort)."""
        if not (args.summary and h.cases):
            return
        try:
            h.analyse()
            with open(args.summary, "w") as f:
                f.write(h.summary(time.time() - h.t0) + f"\n{why}\n")
        except Exception:  # noqa: BLE001
            pass

    try:
        ok = h.run(selected)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); tearing down")
        partial_summary(f"interrupted ({e})")
    except Exception as e:  # noqa: BLE001
        log(f"harness error: {e!r}")
        traceback.print_exc()
        for w in h.workers.values():
            if w.incarnations:
                log(f"{w.wid} log tail:\n{tail(w.logpath)}")
        partial_summary(f"harness error: {e!r}")
    finally:
        h.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
