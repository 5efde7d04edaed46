"""CPU inference of a backbone through ONNX Runtime (about 10x PyTorch eager for
MobileNetV2 on a 2-core CPU).

    backbone = OnnxBackbone.for_model(model)        # exports on first use, then reuses
    feats = backbone(images_nchw_float32)           # np.ndarray (B, D) float32

The ONNX file is exported from the model's own backbone weights with PyTorch's
TorchScript-based exporter (``dynamo=False``: works offline, needs no ``onnxscript``),
with a dynamic batch dimension, and stored in the user's cache directory under the
backbone id (weights + input spec), written atomically. After each export the ONNX
outputs are checked against PyTorch on a random batch; a mismatch raises
``OnnxUnavailable`` and the caller falls back to PyTorch.
"""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .atomic import atomic_write_bytes
from .backbones import Identity
from .cache import default_cache_dir
from .model import FewShotModel, backbone_id

log = logging.getLogger(__name__)

OPSET = 17
# Exported outputs must match PyTorch to this (relative to the largest feature value).
TOLERANCE = 1e-3
# Images per session.run: small batches keep activations in cache; measured on 2 cores
# (MobileNetV2, 224 px, 2 threads): 4-8 -> ~5 ms CPU per image, 32 -> ~6.8, 128 -> ~7.2.
RUN_BATCH = 8
# Bump when the exported graph of the same weights changes (e.g. a faster layer
# formulation), so caches holding the older export are not reused.
EXPORT_REVISION = 3


# backbone id -> a file exported (and verified) by this process, reused for other folders
_EXPORTED: dict[str, Path] = {}


class OnnxUnavailable(Exception):
    """ONNX Runtime cannot run this backbone; ``str(e)`` says why (for the log)."""


def onnx_cache_dir() -> Path:
    return default_cache_dir() / "onnx"


def onnxruntime_available() -> str | None:
    """None when onnxruntime can be imported, else the reason it cannot."""
    try:
        import onnxruntime  # noqa: F401
    except Exception as e:  # ImportError, or a broken native library
        return f"onnxruntime is not usable ({type(e).__name__}: {e})"
    return None


def _check_exportable(backbone: torch.nn.Module) -> None:
    if isinstance(backbone, Identity):
        raise OnnxUnavailable("the identity backbone has nothing to accelerate")
    if any(not getattr(m, "track_running_stats", True) for m in backbone.modules()):
        raise OnnxUnavailable("batch norm without running statistics depends on the batch")


def export_backbone(model: FewShotModel, path: str | os.PathLike[str]) -> None:
    """Export ``model.backbone`` (eval mode, CPU, float32) to ONNX at ``path``, atomically.
    Input ``images`` (batch, C, H, W) float32 -> output ``features`` (batch, D)."""
    backbone = model.backbone
    _check_exportable(backbone)
    was_training = backbone.training
    backbone.eval()
    params = list(backbone.parameters())
    device = params[0].device if params else torch.device("cpu")
    dtype = params[0].dtype if params else torch.float32
    if device.type != "cpu" or dtype != torch.float32:
        backbone = _cpu_float_copy(backbone)
    dummy = torch.zeros(2, *model.input_spec.shape)
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(backbone, (dummy,), buf, dynamo=False, opset_version=OPSET,
                              input_names=["images"], output_names=["features"],
                              dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                              do_constant_folding=True)
    except Exception as e:
        raise OnnxUnavailable(f"export to ONNX failed ({type(e).__name__}: {e})") from e
    finally:
        model.backbone.train(was_training)
    atomic_write_bytes(path, buf.getvalue())


def export_backbone_isolated(model: FewShotModel, path: str | os.PathLike[str],
                             timeout: float = 600.0) -> None:
    """``export_backbone`` in a child Python process. The TorchScript exporter holds the
    GIL for up to a few hundred milliseconds at a time, which would freeze the GUI thread
    of this process; a child process cannot. Falls back to exporting in this process when
    no child can be started (e.g. a frozen application)."""
    backbone = model.backbone
    _check_exportable(backbone)
    if getattr(sys, "frozen", False):
        export_backbone(model, path)
        return
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory(prefix="fewshot-onnx-") as d:
        weights = {k: (v.detach().to("cpu", torch.float32) if v.is_floating_point()
                       else v.detach().cpu()).contiguous()
                   for k, v in backbone.state_dict().items()}
        save_file(weights, os.path.join(d, "backbone.safetensors"))
        arch = {"backbone": backbone.config(), "input": model.input_spec.to_dict()}  # type: ignore[operator]
        with open(os.path.join(d, "arch.json"), "w", encoding="utf-8") as f:
            json.dump(arch, f)
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ,
               "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        try:
            proc = subprocess.run([sys.executable, "-m", "app.core.onnx_backend", d, os.fspath(path)],
                                  capture_output=True, text=True, timeout=timeout, env=env)
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("ONNX export in a child process failed to run (%s); exporting here", e)
            export_backbone(model, path)
            return
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise OnnxUnavailable(lines[-1] if lines else f"export process exited with {proc.returncode}")


def _export_child(folder: str, out: str) -> None:
    """Entry point of the child process of ``export_backbone_isolated``."""
    from safetensors.torch import load_file

    from .backbones import build_backbone
    from .learners import ProtoNet
    from .model import InputSpec

    with open(os.path.join(folder, "arch.json"), encoding="utf-8") as f:
        arch = json.load(f)
    backbone = build_backbone(arch["backbone"])
    backbone.load_state_dict(load_file(os.path.join(folder, "backbone.safetensors")))
    model = FewShotModel(backbone, {ProtoNet.method: ProtoNet()}, InputSpec.from_dict(arch["input"]))
    try:
        export_backbone(model.eval(), out)
    except OnnxUnavailable as e:
        print(str(e), file=sys.stderr)
        raise SystemExit(3) from None


def _cpu_float_copy(module: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(module).to("cpu", torch.float32).eval()


def max_relative_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.abs(b).max()), 1e-12)
    return float(np.abs(a - b).max()) / scale


class OnnxBackbone:
    """A backbone running in an ``onnxruntime.InferenceSession`` on the CPU."""

    def __init__(self, onnx_path: str | os.PathLike[str], threads: int | None = None,
                 run_batch: int = RUN_BATCH) -> None:
        reason = onnxruntime_available()
        if reason:
            raise OnnxUnavailable(reason)
        import onnxruntime as ort

        self.path = Path(onnx_path)
        self.threads = threads or (os.cpu_count() or 1)
        self.run_batch = max(1, int(run_batch))
        self.streams = 1  # >1: chunks run concurrently (use with threads=1); see _run_streams
        self._pool = None
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between batches: decoding threads need those cores.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), so,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:
            raise OnnxUnavailable(f"cannot load {self.path.name} ({type(e).__name__}: {e})") from e
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images: np.ndarray,
                 between: Callable[[], None] | None = None) -> np.ndarray:
        """Features of ``images`` (B, C, H, W), run ``run_batch`` at a time; ``between()``
        is called between runs (the embedder checks for cancellation there)."""
        x = np.ascontiguousarray(images, dtype=np.float32)
        if len(x) <= self.run_batch:
            return self.session.run(None, {self.input_name: x})[0]
        if self.streams > 1:
            return self._run_streams(x, between)
        out = []
        for i in range(0, len(x), self.run_batch):
            if between is not None and i:
                between()
            out.append(self.session.run(None, {self.input_name: x[i:i + self.run_batch]})[0])
        return np.concatenate(out)

    def _run_streams(self, x: np.ndarray, between: Callable[[], None] | None) -> np.ndarray:
        """Chunks run concurrently on ``streams`` threads (session.run releases the GIL):
        parallelism across chunks instead of inside each operator."""
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.streams, thread_name_prefix="onnx")
        starts = range(0, len(x), self.run_batch)
        futures = [self._pool.submit(self.session.run, None,
                                     {self.input_name: x[i:i + self.run_batch]}) for i in starts]
        out = []
        try:
            for f in futures:
                out.append(f.result()[0])
                if between is not None:
                    between()
        finally:
            for f in futures:
                f.cancel()
        return np.concatenate(out)

    @classmethod
    def for_model(cls, model: FewShotModel, cache_dir: str | os.PathLike[str] | None = None,
                  threads: int | None = None, verify: bool = True,
                  run_batch: int = RUN_BATCH, isolate: bool = True) -> "OnnxBackbone":
        """The ONNX version of ``model``'s backbone, exported on first use into
        ``cache_dir`` (default: the user's cache dir / onnx) as ``<backbone id>.onnx``.
        A freshly exported file is checked against PyTorch (``verify``). ``isolate``:
        export in a child process (keeps this process's GUI thread responsive)."""
        reason = onnxruntime_available()
        if reason:
            raise OnnxUnavailable(reason)
        folder = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
        key = backbone_id(model)
        path = folder / f"{key}-r{EXPORT_REVISION}.onnx"
        fresh = False
        earlier = _EXPORTED.get(key)
        if not path.exists() and earlier is not None and earlier != path:
            try:  # exported into another folder earlier in this process: copy, don't trace
                atomic_write_bytes(path, earlier.read_bytes())
                fresh = True
            except OSError:
                pass
        if path.exists():
            try:
                backend = cls(path, threads, run_batch)
            except OnnxUnavailable as e:  # unreadable leftover: export again
                log.warning("re-exporting ONNX backbone: %s", e)
                backend = None
        else:
            backend = None
        if backend is None:
            (export_backbone_isolated if isolate else export_backbone)(model, path)
            fresh = True
            backend = cls(path, threads, run_batch)
        _EXPORTED[key] = path
        if fresh and verify:
            err = backend.check_against_torch(model)
            if err > TOLERANCE:
                _EXPORTED.pop(key, None)
                try:
                    path.unlink()
                except OSError:
                    pass
                raise OnnxUnavailable(f"ONNX output differs from PyTorch (relative error "
                                      f"{err:.2g} > {TOLERANCE:g})")
        return backend

    def check_against_torch(self, model: FewShotModel, batch: int = 3, seed: int = 0) -> float:
        """Largest relative difference between this session and PyTorch on random input."""
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, *model.input_spec.shape, generator=g)
        backbone = model.backbone
        params = list(backbone.parameters())
        if params and (params[0].device.type != "cpu" or params[0].dtype != torch.float32):
            backbone = _cpu_float_copy(backbone)
        was_training = backbone.training
        backbone.eval()
        try:
            with torch.no_grad():
                ref = backbone(x).numpy()
        finally:
            backbone.train(was_training)
        return max_relative_error(self(x.numpy()), ref)


if __name__ == "__main__":  # python -m app.core.onnx_backend FOLDER OUT.onnx (see above)
    _export_child(sys.argv[1], sys.argv[2])
