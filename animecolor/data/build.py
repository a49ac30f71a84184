"""``animecolor dataset build``: color episodes/images -> shards + manifest.

Layout of a built dataset directory::

    manifest.json          build parameters, sources, scenes, per-frame records, checksums
    train-00000.npz ...    np.savez-compatible zip: "rgb" uint8 (N, S, S, 3), "index" int64 (N,)
    val-00000.npz ...

Why ``.npz``: loads with plain NumPy (no extra dependency on the GPU machine),
zlib shrinks flat cel colors well, and fixed working-size uint8 RGB keeps the
loader trivial.  Shards are written with fixed zip timestamps so the same
inputs and seed give byte-identical files.

Each frame is: picture area (letterbox/pillarbox/gate borders cropped), short
side resized to ``size``, center crop ``size x size``.

Resume: every source is first staged under ``OUTDIR/.staging/`` (its kept
frames, in parts of at most 256, plus ``meta.json`` written last); a rerun with
the same selection parameters reuses staged sources and continues with the
rest.  The shards and the manifest are assembled from the staging at the end
(manifest written last, so its presence means "complete").
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import av
import numpy as np

from .. import __version__
from .sampling import DROP_REASONS, KeptFrame, SceneSampler, SelectParams, ThumbIndex
from .sources import Source, discover, frame_count, iter_frames

__all__ = ["BuildEvent", "BuildReport", "build_dataset", "read_manifest", "frames_checksum", "write_npz", "dataset_info"]

FORMAT = "animecolor-frames"
FORMAT_VERSION = 1
STAGING_VERSION = 1
PART_FRAMES = 256
SHARD_FRAMES = 512
FRAME_LAYOUT = "RGB uint8; letterbox/pillarbox/film-gate borders cropped, short side resized to size (area filter), center crop size x size"


@dataclass
class BuildEvent:
    """Progress callback payload.  ``kind``: ``start`` (a source begins; ``total`` frames or None),
    ``frames`` (``n`` more frames read), ``done``/``resumed`` (a source finished / was staged
    already; ``kept``), ``skipped`` (unreadable; ``message``), ``writing`` (assembling shards)."""

    kind: str
    source: str = ""
    n: int = 0
    total: int | None = None
    kept: int = 0
    message: str = ""


ProgressFn = Callable[[BuildEvent], None]


@dataclass
class BuildReport:
    out: str
    frames_in: int
    frames_kept: int
    drops: dict[str, int]
    splits: dict[str, int]
    split_by: str
    bytes: int
    sources: int
    scenes: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    resumed: int = 0
    seconds: float = 0.0


def frames_checksum(frames: list[dict]) -> str:
    """sha256 of the manifest's frame list (canonical JSON): the dataset's provenance id."""
    blob = json.dumps(frames, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` equivalent with fixed zip timestamps (byte-reproducible), atomic."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)
    os.replace(tmp, path)


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stage_key(src: Source, params: SelectParams) -> str:
    st = os.stat(src.path)
    ident = {"src": asdict(src), "size": st.st_size, "mtime": st.st_mtime_ns, "params": asdict(params), "v": STAGING_VERSION}
    return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def _stage_source(src: Source, sdir: Path, params: SelectParams, known: ThumbIndex, progress: ProgressFn) -> dict:
    """Run the sampler over one source, writing kept frames into ``sdir``; returns its meta."""
    if sdir.exists():
        shutil.rmtree(sdir)
    tmpdir = sdir.with_name(sdir.name + ".partial")
    if tmpdir.exists():
        shutil.rmtree(tmpdir)
    tmpdir.mkdir(parents=True)
    sampler = SceneSampler(params, known)
    image_errors: list[tuple[str, str]] = []
    records: list[dict] = []
    parts = 0
    pending: list[KeptFrame] = []

    def flush(final: bool) -> None:
        nonlocal parts, pending
        pending.extend(sampler.kept)
        sampler.kept.clear()
        while len(pending) >= PART_FRAMES or (final and pending):
            chunk, pending = pending[:PART_FRAMES], pending[PART_FRAMES:]
            write_npz(tmpdir / f"part-{parts:04d}.npz", {"rgb": np.stack([k.rgb for k in chunk]), "thumb": np.stack([k.thumb for k in chunk])})
            for row, k in enumerate(chunk):
                records.append({"part": parts, "row": row, "timestamp_s": k.timestamp_s, "scene": k.scene, "name": k.name})
            parts += 1

    n_since = 0
    for fr in iter_frames(src, image_errors):
        sampler.push(fr)
        n_since += 1
        if n_since >= 16:
            progress(BuildEvent("frames", src.path, n=n_since))
            n_since = 0
        if len(sampler.kept) >= PART_FRAMES:
            flush(False)
    sampler.finish()
    flush(True)
    progress(BuildEvent("frames", src.path, n=n_since))
    meta = {
        "source": asdict(src),
        "frames_in": sampler.frames_in,
        "drops": {r: sampler.drops.get(r, 0) for r in DROP_REASONS if r != "max_frames"},
        "scenes": sampler.scenes,
        "records": records,
        "image_errors": image_errors,
    }
    _write_json(tmpdir / "meta.json", meta)
    os.replace(tmpdir, sdir)
    return meta


def _load_part(sdir: Path, part: int, cache: dict) -> dict:
    key = (str(sdir), part)
    if key not in cache:
        cache.clear()
        with np.load(sdir / f"part-{part:04d}.npz") as z:
            cache[key] = {"rgb": z["rgb"], "thumb": z["thumb"]}
    return cache[key]


def _cap_frames(scene_frames: dict[tuple[int, int], list[int]], max_frames: int, rng: np.random.Generator) -> set[int]:
    """Choose at most ``max_frames`` frame ids, as evenly across scenes as possible (water-filling)."""
    sizes = {s: len(v) for s, v in scene_frames.items()}
    lo, hi = 0, max(sizes.values(), default=0)
    while lo < hi:  # largest per-scene cap c with sum(min(n, c)) <= max_frames
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in sizes.values()) <= max_frames:
            lo = mid
        else:
            hi = mid - 1
    cap = lo
    quota = {s: min(n, cap) for s, n in sizes.items()}
    left = max_frames - sum(quota.values())
    bigger = sorted(s for s, n in sizes.items() if n > cap)
    if left > 0 and bigger:
        for i in rng.permutation(len(bigger))[:left]:
            quota[bigger[int(i)]] += 1
    chosen: set[int] = set()
    for s, ids in scene_frames.items():
        k, n = quota[s], len(ids)
        chosen.update(ids[int((j + 0.5) * n / k)] for j in range(k))
    return chosen


def _assign_splits(units: list[tuple], counts: dict, val_fraction: float, rng: np.random.Generator) -> set:
    """Pick whole units (scenes or sources) for val until ~``val_fraction`` of the frames."""
    total = sum(counts.values())
    target = val_fraction * total
    if len(units) < 2 or target <= 0:
        return set()
    val: set = set()
    n_val = 0
    for i in rng.permutation(len(units)):
        u = units[int(i)]
        if n_val >= target:
            break
        if n_val == 0 or n_val + counts[u] <= 1.5 * target:
            val.add(u)
            n_val += counts[u]
    if len(val) == len(units):  # keep something to train on
        val.discard(units[0])
    return val


def _prepare_out(out: Path, overwrite: bool) -> None:
    if (out / "manifest.json").exists():
        if not overwrite:
            raise FileExistsError(f"{out} already holds a dataset; pass --overwrite to rebuild it or choose another -o")
        for p in list(out.glob("train-*.npz")) + list(out.glob("val-*.npz")) + [out / "manifest.json"]:
            p.unlink()
        if (out / ".staging").exists():
            shutil.rmtree(out / ".staging")
    elif out.exists():
        foreign = [p.name for p in out.iterdir() if p.name != ".staging" and not p.name.endswith((".npz", ".tmp"))]
        if foreign:
            raise FileExistsError(f"{out} is not empty and is not a dataset ({foreign[0]} ...); choose an empty or new folder with -o")
        if overwrite and (out / ".staging").exists():
            shutil.rmtree(out / ".staging")
    out.mkdir(parents=True, exist_ok=True)


def build_dataset(
    inputs: list[str | os.PathLike],
    out: str | os.PathLike,
    *,
    size: int = 256,
    max_per_scene: int = 8,
    max_frames: int | None = None,
    val_fraction: float = 0.15,
    seed: int = 0,
    split_by: str = "auto",
    overwrite: bool = False,
    params: SelectParams | None = None,
    progress: ProgressFn | None = None,
) -> BuildReport:
    """Build a frame dataset from videos and image folders into ``out``; see the module docstring."""
    t0 = time.perf_counter()
    if size < 32:
        raise ValueError(f"--size must be at least 32, got {size}")
    if max_per_scene < 1:
        raise ValueError(f"--max-per-scene must be at least 1, got {max_per_scene}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"--max-frames must be at least 1, got {max_frames}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if split_by not in ("auto", "scene", "source"):
        raise ValueError(f"split_by must be auto, scene or source, got {split_by!r}")
    progress = progress or (lambda ev: None)
    params = params or SelectParams()
    params = SelectParams(**{**asdict(params), "size": size, "max_per_scene": max_per_scene})
    out = Path(out)
    sources, skipped = discover(list(inputs))
    if not sources and not skipped:
        raise ValueError("no inputs given")
    if not sources:  # fail before creating anything
        raise FileNotFoundError(f"no video or image to read: {skipped[0][0]}: {skipped[0][1]}")
    created = [p for p in (out, *out.parents) if not p.exists()]  # folders this build makes
    _prepare_out(out, overwrite)
    staging = out / ".staging"
    staging_existed = staging.exists()
    staging.mkdir(exist_ok=True)

    known = ThumbIndex(params.thumb * params.thumb * 3)
    staged: list[tuple[Source, Path, dict]] = []
    resumed = 0
    for src in sources:
        try:
            sdir = staging / _stage_key(src, params)
        except OSError as e:
            skipped.append((src.path, str(e)))
            progress(BuildEvent("skipped", src.path, message=str(e)))
            continue
        if (sdir / "meta.json").exists():
            meta = json.loads((sdir / "meta.json").read_text())
            for part in sorted({r["part"] for r in meta["records"]}):
                with np.load(sdir / f"part-{part:04d}.npz") as z:
                    known.add(z["thumb"])
            resumed += 1
            progress(BuildEvent("resumed", src.path, kept=len(meta["records"])))
        else:
            progress(BuildEvent("start", src.path, total=frame_count(src)))
            try:
                meta = _stage_source(src, sdir, params, known, progress)
            except (av.error.FFmpegError, OSError, ValueError, IndexError, RuntimeError) as e:
                text = getattr(e, "strerror", None) if isinstance(e, av.error.FFmpegError) else None
                text = str(text or e).strip()
                msg = text.splitlines()[0] if text else type(e).__name__
                skipped.append((src.path, msg))
                progress(BuildEvent("skipped", src.path, message=msg))
                continue
            progress(BuildEvent("done", src.path, kept=len(meta["records"])))
        skipped.extend(tuple(x) for x in meta["image_errors"])
        staged.append((src, sdir, meta))

    frames_in = sum(m["frames_in"] for _, _, m in staged)
    drops = Counter()
    for _, _, m in staged:
        drops.update(m["drops"])
    # Frame ids in (source, time) order; scenes keyed by (source index, scene number).
    flat: list[tuple[int, dict]] = []
    scene_frames: dict[tuple[int, int], list[int]] = {}
    for si, (_, _, m) in enumerate(staged):
        for r in m["records"]:
            scene_frames.setdefault((si, r["scene"]), []).append(len(flat))
            flat.append((si, r))
    if not flat:
        why = ", ".join(f"{k} {v}" for k, v in drops.items() if v) or "no readable frames"
        bad = f"; {len(skipped)} unreadable input(s), first: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        # nothing to resume from: leave no half-built folder behind
        if not staging_existed:  # an earlier build's staging stays for its resume
            shutil.rmtree(staging, ignore_errors=True)
        for d in created:  # innermost first; only folders that are still empty
            try:
                d.rmdir()
            except OSError:
                break
        raise RuntimeError(f"no frames kept from {frames_in} frames read ({why}){bad}")

    rng = np.random.default_rng(seed)
    chosen = set(range(len(flat)))
    if max_frames is not None and len(flat) > max_frames:
        chosen = _cap_frames(scene_frames, max_frames, rng)
        drops["max_frames"] = len(flat) - len(chosen)
    scene_frames = {s: [i for i in ids if i in chosen] for s, ids in scene_frames.items()}
    scene_frames = {s: ids for s, ids in scene_frames.items() if ids}

    n_sources = len({s[0] for s in scene_frames})
    if split_by == "auto":
        split_by = "source" if val_fraction > 0 and n_sources >= max(3, math.ceil(2 / val_fraction)) else "scene"
    unit_of = (lambda s: s[0]) if split_by == "source" else (lambda s: s)
    counts: Counter = Counter()
    for s, ids in scene_frames.items():
        counts[unit_of(s)] += len(ids)
    units = sorted(counts)
    val_units = _assign_splits(units, counts, val_fraction, rng)

    # Global scene ids in (source, scene) order.
    scene_ids = {s: i for i, s in enumerate(sorted(scene_frames))}
    scenes_out = []
    for s in sorted(scene_frames):
        si, num = s
        info = staged[si][2]["scenes"][num]
        scenes_out.append({
            "id": scene_ids[s], "source": staged[si][0].path, "number": num,
            "start_s": info["start_s"], "end_s": info["end_s"],
            "split": "val" if unit_of(s) in val_units else "train", "frames": len(scene_frames[s]),
        })

    progress(BuildEvent("writing", str(out), total=len(chosen)))
    frames_out: list[dict] = []
    shards_out: list[dict] = []
    cache: dict = {}
    kept_per_source: Counter = Counter()
    for split in ("train", "val"):
        ids = [i for s in sorted(scene_frames) if scenes_out[scene_ids[s]]["split"] == split for i in scene_frames[s]]
        for sh in range(0, len(ids), SHARD_FRAMES):
            batch = ids[sh : sh + SHARD_FRAMES]
            name = f"{split}-{sh // SHARD_FRAMES:05d}.npz"
            rgbs, index = [], []
            for fid in batch:
                si, r = flat[fid]
                src, sdir, _ = staged[si]
                rgb = _load_part(sdir, r["part"], cache)["rgb"][r["row"]]
                rec = {
                    "source": r["name"] or src.path, "timestamp_s": r["timestamp_s"],
                    "scene": scene_ids[(si, r["scene"])], "split": split, "shard": name, "row": len(rgbs),
                    "checksum": hashlib.sha256(rgb.tobytes()).hexdigest(),
                }
                kept_per_source[si] += 1
                index.append(len(frames_out))
                frames_out.append(rec)
                rgbs.append(rgb)
            write_npz(out / name, {"rgb": np.stack(rgbs), "index": np.asarray(index, np.int64)})
            shards_out.append({"file": name, "split": split, "frames": len(batch), "bytes": (out / name).stat().st_size, "sha256": _sha256_file(out / name)})
            progress(BuildEvent("frames", str(out), n=len(batch)))
    cache.clear()

    splits = {sp: sum(1 for f in frames_out if f["split"] == sp) for sp in ("train", "val")}
    total_bytes = sum(s["bytes"] for s in shards_out)
    source_stats = []
    for si, (src, _, m) in enumerate(staged):
        source_stats.append({"path": src.path, "kind": src.kind, "frames_in": m["frames_in"], "kept": kept_per_source[si], "drops": m["drops"], "scenes_detected": len(m["scenes"])})
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": __version__,
        "params": {
            **asdict(params), "max_frames": max_frames, "val_fraction": val_fraction, "seed": seed, "split_by": split_by,
            "scene_detector": f"scenedetect.ContentDetector(threshold={params.cut_threshold}, min_scene_len={params.min_scene_frames})",
        },
        "frame_layout": {"size": [size, size], "channels": "RGB", "dtype": "uint8", "mapping": FRAME_LAYOUT},
        "frames_in": frames_in,
        "frames_kept": len(frames_out),
        "drops": {r: int(drops.get(r, 0)) for r in DROP_REASONS},
        "splits": splits,
        "bytes": total_bytes,
        "sources": source_stats,
        "skipped": [{"path": p, "error": e} for p, e in skipped],
        "shards": shards_out,
        "scenes": scenes_out,
        "frames": frames_out,
        "manifest_checksum": frames_checksum(frames_out),
    }
    _write_json(out / "manifest.json", manifest)
    shutil.rmtree(staging, ignore_errors=True)
    return BuildReport(
        out=str(out), frames_in=frames_in, frames_kept=len(frames_out), drops=manifest["drops"], splits=splits,
        split_by=split_by, bytes=total_bytes, sources=len(staged), scenes=len(scenes_out), skipped=skipped,
        resumed=resumed, seconds=time.perf_counter() - t0,
    )


def read_manifest(root: str | os.PathLike) -> dict:
    """Load and check a dataset's ``manifest.json`` (format and frame-list checksum)."""
    path = Path(root) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: build a dataset with `animecolor dataset build INPUTS -o {root}`")
    m = json.loads(path.read_text())
    if m.get("format") != FORMAT:
        raise ValueError(f"{path} is not an animecolor frame dataset (format {m.get('format')!r})")
    if m.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} has format version {m['format_version']}; upgrade animecolor to read it")
    if frames_checksum(m["frames"]) != m["manifest_checksum"]:
        raise ValueError(f"{path}: frame list does not match manifest_checksum (edited or corrupt); rebuild the dataset")
    return m


def dataset_info(root: str | os.PathLike, verify: bool = False) -> dict:
    """Summary of a built dataset; ``verify`` also checks every shard's sha256 and frame checksums."""
    root = Path(root)
    m = read_manifest(root)
    problems: list[str] = []
    if verify:
        for sh in m["shards"]:
            p = root / sh["file"]
            if not p.exists():
                problems.append(f"{sh['file']} missing")
                continue
            if _sha256_file(p) != sh["sha256"]:
                problems.append(f"{sh['file']} sha256 mismatch")
            with np.load(p) as z:
                rgb, index = z["rgb"], z["index"]
            for row, fi in enumerate(index):
                rec = m["frames"][int(fi)]
                if rec["shard"] != sh["file"] or rec["row"] != row or hashlib.sha256(rgb[row].tobytes()).hexdigest() != rec["checksum"]:
                    problems.append(f"{sh['file']} row {row} does not match frame {int(fi)}")
                    break
    return {
        "path": str(root), "version": m["version"], "frames_in": m["frames_in"], "frames_kept": m["frames_kept"],
        "splits": m["splits"], "split_by": m["params"]["split_by"], "bytes": m["bytes"], "size": m["frame_layout"]["size"],
        "drops": m["drops"], "scenes": len(m["scenes"]), "sources": len(m["sources"]), "skipped": len(m["skipped"]),
        "shards": len(m["shards"]), "manifest_checksum": m["manifest_checksum"], "problems": problems if verify else None,
    }
