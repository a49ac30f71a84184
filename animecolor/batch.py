"""Many episodes, many machines: colorize a batch of videos, each episode (or segment) a Ray task.

::

    result = colorize_many(["season1/"], "season1_color/", segments=1)
    for ep in result.episodes:
        ep.status, ep.frames, ep.fps, ep.error

* Every episode is one task running :func:`animecolor.pipeline.colorize_video`;
  with ``segments > 1`` an episode is cut at clean keyframes near scene cuts
  (:mod:`animecolor.segments`), each segment is a task, and one more task joins
  them by packet copy with the source's audio and subtitles.
* The weights go into Ray's object store once (``ray.put``) and every task
  reads them from there, not from a path a remote node may not have.  Inputs
  and the output folder must be visible to every node (a shared file system).
* Resumable: beside each output, ``NAME.animecolor.json`` records the input's
  size, mtime and hash prefix, the options, the weights' checksum and the
  output's size and hash prefix; a rerun skips an episode only when all of them
  match.  Temporary files live in ``OUT_DIR/.animecolor-batch/`` and are removed;
  finished segments of an interrupted episode stay there (each with its own
  record) and are reused by the next run.
* Faults: a failing episode is reported and the others go on; a worker process
  that dies is retried by Ray (``max_retries``) and finished segments are kept.
* Interrupted (KeyboardInterrupt in ``progress`` or anywhere in the driver): it
  returns only when no task writes any more, each episode complete with its
  record or absent (:meth:`_Ray.close`, the gate of :class:`_Board`).
* One worker and no cluster address: everything runs in this process, without Ray.

The library never prints; ``progress(BatchProgress)`` is called as work advances.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .segments import SEGMENT_EXT, Segment, cut_segment, join_segments, plan_segments

__all__ = [
    "EpisodeOptions",
    "EpisodeReport",
    "BatchResult",
    "BatchProgress",
    "TaskProgress",
    "colorize_many",
    "find_videos",
    "RECORD_SUFFIX",
    "WORK_DIR",
]

RECORD_SUFFIX = ".animecolor.json"
WORK_DIR = ".animecolor-batch"
RECORD_FORMAT = "animecolor-batch/1"
HASH_BYTES = 1 << 20  # hash prefix length of inputs and outputs in the completion records
MAX_RETRIES = 3  # Ray retries of a task whose worker process died
CANCEL_WAIT_S = 10.0  # after an interrupt, how long to wait for the cancelled tasks to stop before killing them
KILL_WAIT_S = 5.0  # how long to wait for a killed worker process to be gone
AUTO_SEGMENT_SECONDS = 120.0  # --segments auto: no segment shorter than this


@dataclass(frozen=True)
class EpisodeOptions:
    """Settings that change an episode's output (they go into its completion record)."""

    working_size: int | None = None
    temperature: float | None = None
    batch_size: int | None = None
    temporal: str | None = None
    codec: str = "libx264"
    crf: int = 18
    preset: str | None = None
    encoder: str = "pyav"
    subtitles: str = "copy"


@dataclass
class EpisodeReport:
    """What happened to one input (``seconds``: time in its tasks, summed over its segments)."""

    input: Path
    output: Path
    status: str  # "done", "skipped" (complete from an earlier run) or "failed"
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None
    segments: int = 1
    attempts: int = 0  # task starts, retries included (0 when skipped)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BatchResult:
    episodes: list[EpisodeReport]
    seconds: float
    workers: int  # tasks at a time: the local setting, or the cluster's CPUs // threads (GPUs for GPU tasks)
    ray: bool  # ran on Ray (else in this process, or nothing to run)
    ray_start_seconds: float = 0.0  # ray.init when this call started the cluster

    @property
    def failed(self) -> list[EpisodeReport]:
        return [e for e in self.episodes if e.status == "failed"]


@dataclass
class TaskProgress:
    key: str  # the output name, plus "#i" for segment i
    done: int = 0
    total: int | None = None
    attempts: int = 0
    pid: int | None = None  # the worker process running it now
    finished: bool = False


@dataclass
class BatchProgress:
    tasks: dict[str, TaskProgress]
    frames_total: int  # estimated from the containers' frame counts
    frames_done: int
    seconds: float


ProgressFn = Callable[[BatchProgress], None]


# ----------------------------------------------------------------------------- inputs and records


def find_videos(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; folders expanded recursively (sorted) to their video files, hidden ones skipped."""
    from .data.sources import VIDEO_EXTS

    out: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            out.extend(
                sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in VIDEO_EXTS
                       and not any(part.startswith(".") for part in q.relative_to(p).parts))
            )
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"input not found: {p}")
    if not out:
        raise ValueError(f"no video files found in {', '.join(map(str, inputs))}")
    return out


def _hash_prefix(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(HASH_BYTES))
    return h.hexdigest()


def _fingerprint(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_1MiB": _hash_prefix(path)}


def record_path(output: Path) -> Path:
    return output.with_name(output.name + RECORD_SUFFIX)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class _Job:
    """One episode as the tasks see it (pickled to the workers)."""

    src: Path
    dst: Path
    work: Path
    key: str
    identity: dict  # input fingerprint, options, weights checksum, segments: what the record must match
    options: EpisodeOptions
    weights_name: str
    weights_sha: str
    device: str | None
    threads: int | None
    frames: int | None  # the container's estimate, for progress


def _record_matches(rec: dict | None, job: _Job) -> bool:
    return bool(rec) and rec.get("format") == RECORD_FORMAT and all(rec.get(k) == v for k, v in job.identity.items())


def is_complete(job: _Job) -> bool:
    """The output exists, and its record matches this input, these options and weights, and the file itself."""
    rec = _read_json(record_path(job.dst))
    if not _record_matches(rec, job) or not job.dst.is_file():
        return False
    out = rec.get("output") or {}
    return job.dst.stat().st_size == out.get("size") and _hash_prefix(job.dst) == out.get("sha256_1MiB")


def _publish(job: _Job, tmp: Path, frames: int, seconds: float) -> None:
    """Record first, then the output by rename: a run killed in between leaves a record that does not match."""
    rec = {"format": RECORD_FORMAT, **job.identity, "frames": frames, "seconds": round(seconds, 3),
           "output": {"size": tmp.stat().st_size, "sha256_1MiB": _hash_prefix(tmp)}}
    _write_json(record_path(job.dst), rec)
    os.replace(tmp, job.dst)


def _clean_partials(folder: Path, stem: str) -> None:
    """Remove the temporary files a killed attempt left (``.STEM.partial-PID.EXT``)."""
    for p in folder.glob(f".{stem}.partial-*"):
        p.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- progress board


class _Board:
    """Where tasks report progress (a Ray actor on a cluster, a plain object in-process), and the gate that stops
    them after an interrupt: once closed, no task enters its body and none may write its result."""

    def __init__(self, on_change: Callable[[], None] | None = None):
        self.tasks: dict[str, TaskProgress] = {}
        self.on_change = on_change  # in-process: report progress as it happens
        self.open = True
        self.running: dict[str, tuple] = {}  # key -> (node id, pid, process start) of the attempt inside its body

    def enter(self, key: str, where: tuple, total: int | None, row: bool = True) -> bool:
        """A task attempt begins its body (refused once closed); ``row``: it has a progress row (not the joins)."""
        if self.open:
            self.running[key] = where
            if row:
                t = self.tasks.setdefault(key, TaskProgress(key))
                t.attempts += 1
                t.pid, t.done, t.total, t.finished = where[1], 0, total, False
                if self.on_change:
                    self.on_change()
        return self.open

    def leave(self, key: str) -> None:
        self.running.pop(key, None)

    def may_write(self) -> bool:
        return self.open

    def close(self) -> None:
        self.open = False

    def stragglers(self) -> dict[str, tuple]:
        return dict(self.running)

    def update(self, key: str, done: int, total: int | None, finished: bool = False) -> None:
        t = self.tasks.setdefault(key, TaskProgress(key))
        t.done, t.finished = done, finished
        if total:
            t.total = total
        if self.on_change:
            self.on_change()

    def snapshot(self) -> dict[str, TaskProgress]:
        return {k: TaskProgress(**asdict(v)) for k, v in self.tasks.items()}


def _call(board, method: str, *args, wait: bool = False):
    """``board.method(*args)``; on a Ray actor, ``wait`` for its answer (the gate's calls; progress not: a task
    blocked in ray.get lends its CPUs to another task, so waiting at every update let a third task in on 2 CPUs)."""
    fn = getattr(board, method)
    if not hasattr(fn, "remote"):
        return fn(*args)
    ref = fn.remote(*args)
    if wait:
        import ray

        return ray.get(ref)
    return None


class _Stopped(Exception):
    """The batch was interrupted: the task stops without writing its result."""


def _task(fn: Callable[..., dict]) -> Callable[..., dict | None]:
    """``fn`` as a Ray task: stopped by an interrupt, it returns None instead of an error (nobody reads it any
    more, and Ray would print it)."""

    def task(*args):
        try:
            return fn(*args)
        except _Stopped:
            return None

    task.__name__ = task.__qualname__ = fn.__name__
    return task


class _Attempt:
    """A task's body runs inside one: ``with _Attempt(board, key) as att``.

    Entering (which also starts the task's progress row of ``total`` frames, if ``row``) is refused once the board
    is closed (the task then does nothing); leaving is always reported, so the driver knows when no task can
    write any more.  A task writes its result only after ``att.commit()``, which stops it (removing the given
    files) when the batch was interrupted.  On a Ray worker, SIGINT (what ``ray.cancel`` sends a running task)
    only sets a flag, read there and at every progress report: a KeyboardInterrupt raised at any line could
    cut short the report that the task has ended (and once left a worker with half-imported PyTorch).
    """

    def __init__(self, board, key: str, total: int | None = None, row: bool = True):
        self.board, self.key, self.total, self.row = board, key, total, row
        self.stop, self.old_handler = False, None

    def _on_sigint(self, signum, frame) -> None:
        self.stop = True

    def __enter__(self) -> "_Attempt":
        import signal
        import threading

        if hasattr(self.board.enter, "remote") and threading.current_thread() is threading.main_thread():
            self.old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            where = (_node_id(), os.getpid(), _process_start(os.getpid()))
            if not _call(self.board, "enter", self.key, where, self.total, self.row, wait=True):
                raise _Stopped("interrupted")
        except BaseException:
            self._restore()
            raise
        return self

    def check(self) -> None:
        if self.stop:
            raise _Stopped("interrupted")

    def commit(self, *drop: Path) -> None:
        """Go on to write the result, or (interrupted) remove ``drop`` and stop: the result is complete or absent."""
        if self.stop or not _call(self.board, "may_write", wait=True):
            for p in drop:
                p.unlink(missing_ok=True)
            raise _Stopped("interrupted")

    def __exit__(self, *exc) -> None:
        try:
            _call(self.board, "leave", self.key, wait=True)
        finally:
            self._restore()

    def _restore(self) -> None:
        if self.old_handler is not None:
            import signal

            signal.signal(signal.SIGINT, self.old_handler)
            self.old_handler = None


class _Reporter:
    """``progress(done, total)`` for colorize_video, throttled to ~4 updates a second; stops the task once it
    was interrupted (:class:`_Stopped`, so colorize_video removes its temporary file)."""

    def __init__(self, attempt: _Attempt):
        self.attempt, self.last = attempt, 0.0

    def __call__(self, done: int, total: int | None) -> None:
        self.attempt.check()
        now = time.monotonic()
        if now - self.last >= 0.25:
            self.last = now
            _call(self.attempt.board, "update", self.attempt.key, done, total)

    def finished(self, done: int) -> None:  # recorded before the task's end (the board's calls keep their order)
        _call(self.attempt.board, "update", self.attempt.key, done, done, True)


def _node_id() -> str | None:
    """The Ray node this process runs on (None outside Ray)."""
    import sys

    ray = sys.modules.get("ray")
    return ray.get_runtime_context().get_node_id() if ray is not None and ray.is_initialized() else None


def _process_start(pid: int) -> str | None:
    """What tells process ``pid`` from a later one with the same pid (its start time, Linux; else ""); None once
    it has ended (gone, or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:  # no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return ""
    fields = stat.rsplit(")", 1)[1].split()  # field 3 (state) onwards; field 22 is the start time
    return None if fields[0] in ("Z", "X") else fields[19]


def _kill_process(pid: int, start: str | None, wait: float) -> bool:
    """SIGKILL process ``pid`` of this node if it is still the one that started at ``start``; True once it is gone."""
    import signal

    if start is None or _process_start(pid) != start:
        return True
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait
    while _process_start(pid) == start:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ----------------------------------------------------------------------------- tasks

_COLORIZERS: dict = {}  # per worker process: the model is loaded once and reused by later tasks


def _colorizer(job: _Job, blob: _Blob):
    from .colorize import load_colorizer

    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    key = (job.weights_sha, job.options.working_size, job.options.temperature, job.device)
    if key not in _COLORIZERS:
        path = Path(tempfile.gettempdir()) / f"animecolor-weights-{job.weights_sha[:16]}.safetensors"
        for dst, data in ((path, blob.safetensors), (path.with_suffix(".onnx"), blob.onnx)):
            if data is not None and (not dst.is_file() or dst.stat().st_size != len(data)):
                tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, dst)
        col = load_colorizer(path, job.device, working_long_side=job.options.working_size,
                             temperature=job.options.temperature)
        col.name = job.weights_name
        _COLORIZERS.clear()
        _COLORIZERS[key] = col
    return _COLORIZERS[key]


def _colorize(job: _Job, blob: _Blob, src: Path, dst: Path, progress, subtitles: str):
    from .pipeline import colorize_video

    o = job.options
    return colorize_video(src, dst, _colorizer(job, blob), batch_size=o.batch_size, temporal=o.temporal,
                          codec=o.codec, crf=o.crf, preset=o.preset, encoder=o.encoder, subtitles=subtitles,
                          overwrite=True, progress=progress)


def _episode_task(job: _Job, blob: _Blob, board) -> dict:
    """A whole episode: colorize into the work folder, then publish (record, rename)."""
    with _Attempt(board, job.key, job.frames) as att:
        job.work.mkdir(parents=True, exist_ok=True)
        _clean_partials(job.work, job.dst.stem)
        rep = _Reporter(att)
        tmp = job.work / job.dst.name
        res = _colorize(job, blob, job.src, tmp, rep, job.options.subtitles)
        att.commit(tmp)
        _publish(job, tmp, res.frames, res.seconds)
        rep.finished(res.frames)
        return {"frames": res.frames, "seconds": res.seconds}


def _segment_paths(job: _Job, seg: Segment) -> tuple[Path, Path, Path]:
    stem = f"seg-{seg.index:03d}"
    return job.work / f"{stem}.src{SEGMENT_EXT}", job.work / f"{stem}{SEGMENT_EXT}", job.work / f"{stem}.json"


def _segment_task(job: _Job, seg: Segment, blob: _Blob, board) -> dict:
    """One segment: video packets copied out of the source, colorized; kept with a record of its own."""
    cut, out, rec_path = _segment_paths(job, seg)
    key = f"{job.key}#{seg.index}"
    want = {**job.identity, "segment": asdict(seg)}
    with _Attempt(board, key, seg.packets) as att:
        rec = _read_json(rec_path)
        if rec and all(rec.get(k) == v for k, v in want.items()) and out.is_file() and out.stat().st_size == rec.get("size"):
            _call(board, "update", key, rec["frames"], rec["frames"], True)
            return {"frames": rec["frames"], "seconds": 0.0, "reused": True}
        job.work.mkdir(parents=True, exist_ok=True)
        _clean_partials(job.work, out.stem)
        rep = _Reporter(att)
        t0 = time.perf_counter()
        cut_segment(job.src, seg, cut)
        try:
            res = _colorize(job, blob, cut, out, rep, "drop")
        finally:
            cut.unlink(missing_ok=True)
        att.commit(out)
        _write_json(rec_path, {**want, "frames": res.frames, "size": out.stat().st_size})
        rep.finished(res.frames)
        return {"frames": res.frames, "seconds": time.perf_counter() - t0, "reused": False}


def _join_task(job: _Job, segs: Sequence[Segment], board, *seg_results: dict) -> dict:
    """Join the colorized segments by packet copy, with the source's audio/subtitles, and publish."""
    from .io import probe

    with _Attempt(board, f"{job.key}#join", row=False) as att:
        info = probe(job.src)
        side = [i for i, kind, _ in info.side_streams if kind != "subtitle" or job.options.subtitles == "copy"]
        tmp = job.work / job.dst.name
        parts = [_segment_paths(job, s)[1] for s in segs]
        try:
            n = join_segments(job.src, parts, tmp, side, segments=segs)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        att.commit(tmp)
        seconds = sum(r["seconds"] for r in seg_results)
        _publish(job, tmp, n, seconds)
        return {"frames": n, "seconds": seconds}


# ----------------------------------------------------------------------------- driver


def _message(e: BaseException) -> str:
    cause = getattr(e, "cause", None)  # ray.exceptions.RayTaskError wraps the task's own exception
    err = cause if isinstance(cause, BaseException) else e
    text = str(err).strip()
    # a RayTaskError's text starts with the task's name and traceback; keep the last line (the error itself)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return type(err).__name__
    return lines[-1] if "Traceback" in text else lines[0]


@dataclass(frozen=True)
class _Blob:
    """What travels to the workers: the weights, and their ONNX export when there is one (animecolor.runtime)."""

    safetensors: bytes
    onnx: bytes | None = None


def _weights(weights: str | os.PathLike | None) -> tuple[str, str, _Blob]:
    from .colorize import DEFAULT_WEIGHTS
    from .model import WeightsError, read_metadata
    from .runtime import find_export, onnx_available

    path = Path(weights) if weights else DEFAULT_WEIGHTS
    if weights is None and not path.is_file():
        raise WeightsError(f"shipped default weights are missing: {path} (pass --weights)")
    read_metadata(path)  # a clear error before any task starts
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    export = find_export(path, sha) if onnx_available() else None
    return path.name, sha, _Blob(data, export.read_bytes() if export else None)


def _auto_segments(duration: float | None, workers: int, episodes: int) -> int:
    if not duration or episodes >= workers:
        return 1
    return max(1, min(-(-workers // episodes), int(duration // AUTO_SEGMENT_SECONDS)))


def _have_ray() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


class _Local:
    """Runs the tasks one after another in this process (no Ray)."""

    ray = False

    def __init__(self):
        self.board = _Board()
        self.start_seconds = 0.0
        self.slots = 1

    def run(self, plans, blob, on_done, poll) -> None:
        self.board.on_change = lambda: poll(self.board.snapshot())
        for job, segs in plans:
            try:
                if segs is None:
                    out = _episode_task(job, blob, self.board)
                else:
                    outs = [_segment_task(job, s, blob, self.board) for s in segs]
                    out = _join_task(job, segs, self.board, *outs)
                on_done(job, out, None)
            except Exception as e:  # one episode's failure does not stop the others
                on_done(job, None, e)
            poll(self.board.snapshot())

    def close(self) -> None:
        pass


class _Ray:
    """Submits every episode/segment as a Ray task and waits on them."""

    ray = True

    def __init__(self, address: str | None, workers: int, threads: int | None, device: str | None):
        try:
            import ray
        except ImportError:
            raise RuntimeError("more than one worker or --ray-address needs Ray: pip install 'animecolor[cluster]'") from None
        self.rt = ray
        self.started = False
        t0 = time.perf_counter()
        if not ray.is_initialized():
            kw = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=False)
            if address:
                ray.init(address=address, **kw)
            else:
                ray.init(num_cpus=workers * (threads or 1), **kw)
            self.started = True
        self.start_seconds = time.perf_counter() - t0
        gpus = ray.cluster_resources().get("GPU", 0)
        use_gpu = (device or "auto").startswith("cuda") or ((device in (None, "auto")) and gpus >= 1)
        self.resources = dict(num_gpus=1, num_cpus=1) if use_gpu else dict(num_cpus=threads or 1)
        have = ray.cluster_resources()
        self.slots = int(gpus) if use_gpu else max(1, int(have.get("CPU", 1) // (threads or 1)))
        self.board = ray.remote(_Board).options(num_cpus=0).remote()
        self.refs: list = []  # every task submitted

    def run(self, plans, blob, on_done, poll) -> None:
        ray = self.rt
        opts = dict(max_retries=MAX_RETRIES, retry_exceptions=False)
        episode = ray.remote(_task(_episode_task)).options(**opts, **self.resources)
        segment = ray.remote(_task(_segment_task)).options(**opts, **self.resources)
        join = ray.remote(_task(_join_task)).options(**opts, num_cpus=0)  # packet copy: I/O, not compute
        blob_ref = ray.put(blob)  # the weights travel once, through the object store
        jobs = {}
        for job, segs in plans:
            if segs is None:
                ref = episode.remote(job, blob_ref, self.board)
            else:
                parts = [segment.remote(job, s, blob_ref, self.board) for s in segs]
                self.refs += parts
                ref = join.remote(job, segs, self.board, *parts)
            jobs[ref] = job
            self.refs.append(ref)
        pending = list(jobs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            for ref in done:
                try:
                    on_done(jobs[ref], ray.get(ref), None)
                except ray.exceptions.RayError as e:
                    on_done(jobs[ref], None, e)
            poll(ray.get(self.board.snapshot.remote()))

    def close(self) -> None:
        """Return only when no task can write any more (after an interrupt, or a failed segment's siblings).

        Ray's cancel is asynchronous (a cancelled task's result can be ready before its worker has stopped), so
        the board is the signal: closed first (no task enters or writes its result from then on), then the tasks
        are cancelled and the ones inside their body are waited for; those still there after CANCEL_WAIT_S are
        killed (SIGKILL, from a task on their node) and waited for.
        """
        ray = self.rt
        try:
            ray.get(self.board.close.remote())
            for ref in self.refs:
                try:
                    ray.cancel(ref)
                except Exception:  # already finished, or the cluster is going: the board decides anyway
                    pass
            here = ray.get_runtime_context().get_node_id()
            deadline = time.monotonic() + CANCEL_WAIT_S
            while True:
                left = [w for w in ray.get(self.board.stragglers.remote()).values()
                        if w[0] != here or _process_start(w[1]) == w[2]]  # a dead local worker is not waited for
                if not left or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if left:
                from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

                kill = ray.remote(_kill_process)
                ray.wait([kill.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
                          .remote(pid, start, KILL_WAIT_S) for node, pid, start in left],
                         num_returns=len(left), timeout=KILL_WAIT_S + CANCEL_WAIT_S)
        finally:
            if self.started:
                ray.shutdown()


def colorize_many(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    options: EpisodeOptions = EpisodeOptions(),
    fmt: str | None = None,
    segments: int | str = 1,
    ray_address: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    device: str | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    use_ray: bool | None = None,
) -> BatchResult:
    """Colorize every video of ``inputs`` (files, folders) into ``out_dir``; see the module docstring.

    fmt: output extension (``".mkv"``); default: each input's own.  segments: an
    int, or ``"auto"`` (split long episodes when there are more workers than
    episodes, no segment under 2 minutes).  workers: tasks at a time on the local
    cluster (default: CPU cores // threads, or 1 when Ray is not installed); ``1``
    without ``ray_address`` runs in this process without Ray.  threads: model threads per task (CPU tasks ask Ray
    for that many CPUs; GPU tasks ask for one GPU).  Raises for bad arguments
    (one-line messages); episodes that fail are reported in the result, not raised.
    """
    out_dir = Path(out_dir).absolute()  # tasks may run with another working folder, or on another node
    videos = [v.absolute() for v in find_videos(inputs)]
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if segments != "auto" and (not isinstance(segments, int) or segments < 1):
        raise ValueError(f"segments must be a number >= 1 or 'auto', got {segments!r}")
    if fmt is not None:
        fmt = fmt if fmt.startswith(".") else f".{fmt}"
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"output folder is a file: {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    names: dict[str, Path] = {}
    for v in videos:
        name = v.stem + (fmt or v.suffix)
        if names.get(name) == v:  # the same file twice (given alone and inside a folder)
            continue
        if name in names:
            raise ValueError(f"two inputs would both write {out_dir / name}: {names[name]} and {v}")
        names[name] = v
    wname, wsha, blob = _weights(weights)
    if workers is None:
        workers = max(1, (os.cpu_count() or 1) // (threads or 1)) if ray_address or _have_ray() else 1
    from .io import probe

    t0 = time.perf_counter()
    reports: dict[Path, EpisodeReport] = {}
    plans: list[tuple[_Job, list[Segment] | None]] = []
    totals: dict[str, int] = {}
    for name, src in names.items():
        dst = out_dir / name
        rep = reports[src] = EpisodeReport(src, dst, "failed")
        try:
            info = probe(src)
            n = segments if segments != "auto" else _auto_segments(info.duration, workers, len(videos))
            job = _Job(src, dst, out_dir / WORK_DIR / name, name,
                       {"input": _fingerprint(src), "options": asdict(options), "weights": wsha, "segments": n},
                       options, wname, wsha, device, threads, info.frames)
            if is_complete(job):
                rec = _read_json(record_path(dst)) or {}
                rep.status, rep.frames, rep.segments = "skipped", int(rec.get("frames", 0)), n
                continue
            if dst.exists() and not overwrite:
                raise FileExistsError(f"output exists and was not made from this input with these options: {dst} "
                                      "(pass --overwrite to replace it)")
            segs = plan_segments(src, n) if n > 1 else None
            rep.segments = len(segs) if segs else 1
            plans.append((job, segs))
            totals[name] = info.frames or 0
        except Exception as e:
            rep.error = _message(e)

    def on_done(job: _Job, out: dict | None, err: BaseException | None) -> None:
        rep = reports[job.src]
        if err is None:
            rep.status, rep.frames, rep.seconds = "done", out["frames"], out["seconds"]
        else:
            rep.status, rep.error = "failed", _message(err)
        shutil.rmtree(job.work, ignore_errors=True)  # segments of a done or failed episode are not needed

    def poll(tasks: dict[str, TaskProgress]) -> None:
        attempts: dict[str, int] = {}
        for k, t in tasks.items():
            ep = k if k in names else k.rsplit("#", 1)[0]
            attempts[ep] = attempts.get(ep, 0) + t.attempts
        for ep, a in attempts.items():
            reports[names[ep]].attempts = a
        if progress is not None:
            done = sum(t.done for t in tasks.values())
            progress(BatchProgress(tasks, max(sum(totals.values()), done), done, time.perf_counter() - t0))

    runner = None
    try:
        if plans:
            local = (workers == 1 and not ray_address) if use_ray is None else not use_ray
            if local and (workers != 1 or ray_address):
                raise ValueError("in-process runs take one worker and no Ray address")
            runner = _Local() if local else _Ray(ray_address, workers, threads, device)
            runner.run(plans, blob, on_done, poll)
    finally:
        if runner is not None:
            runner.close()
        for job, _ in plans:  # temporary files of killed or interrupted attempts; finished segments stay
            rec = record_path(job.dst)
            if reports[job.src].status != "done" and _record_matches(_read_json(rec), job) and not is_complete(job):
                rec.unlink()  # a publish killed between the record and the rename: the episode is not complete
            if job.work.is_dir():
                for p in job.work.glob(".*.partial-*"):
                    p.unlink(missing_ok=True)
                for p in job.work.glob(f"*.src{SEGMENT_EXT}"):
                    p.unlink(missing_ok=True)
                (job.work / job.dst.name).unlink(missing_ok=True)
                if not any(job.work.iterdir()):
                    job.work.rmdir()
        work = out_dir / WORK_DIR
        if work.is_dir() and not any(work.iterdir()):
            work.rmdir()
    return BatchResult(
        episodes=[reports[src] for src in names.values()],
        seconds=time.perf_counter() - t0,
        workers=runner.slots if runner else workers,
        ray=bool(runner and runner.ray),
        ray_start_seconds=runner.start_seconds if runner else 0.0,
    )
