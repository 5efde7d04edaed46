"""GPU check (run where CUDA is available): the CUDA path's answers and its throughput.

    python bench/bench_gpu.py IMAGE_FOLDER

1. Features of the CUDA path (half precision, channels-last) against float32 on the CPU
   for real images: the relative error, and whether ProtoNet's decisions agree.
2. Throughput of the app's pipeline (``Embedder``, Pillow decode on CPU threads, cold
   cache) for several batch sizes / decode thread counts, and of inference alone.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import jpegs_under, machine  # noqa: E402

from app.core.backbones import MobileNetV2Features  # noqa: E402
from app.core.cache import EmbeddingCache  # noqa: E402
from app.core.embedding import Embedder, TorchRunner  # noqa: E402
from app.core.images import load_for_model  # noqa: E402
from app.core.learners import ProtoNet  # noqa: E402
from app.core.model import FewShotModel, InputSpec  # noqa: E402


def model() -> FewShotModel:
    torch.manual_seed(0)
    bb = MobileNetV2Features()
    g = torch.Generator().manual_seed(0)
    for m in bb.modules():  # realistic (non-identity) batch norm
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return FewShotModel(bb, {"protonet": ProtoNet()}, InputSpec()).eval()


def main() -> None:
    folder = Path(sys.argv[1])
    paths = jpegs_under(folder)
    print(machine(), "| GPU:", torch.cuda.get_device_name(0), flush=True)
    m = model()
    arrays = np.stack([load_for_model(p, m.input_spec) for p in paths[:256]])
    with torch.no_grad():
        ref = m.features(torch.from_numpy(arrays)).numpy()
    gpu = TorchRunner(m, torch.device("cuda"))
    out = np.concatenate([gpu(arrays[i:i + 64]) for i in range(0, 256, 64)])
    rel = float(np.abs(out - ref).max() / np.abs(ref).max())
    cos = float(np.min((out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)))
    protos = ref[:10]
    agree = float(np.mean(((ref[10:, None] - protos) ** 2).sum(-1).argmin(1)
                          == ((out[10:, None] - protos) ** 2).sum(-1).argmin(1)))
    print(f"CUDA half+channels_last vs CPU float32: max rel err {rel:.2e}, min cosine {cos:.6f}, "
          f"ProtoNet decisions agree {agree:.3f}", flush=True)
    assert next(m.backbone.parameters()).device.type == "cpu", "caller's model was moved"
    x = torch.from_numpy(arrays[:128])
    for bs in (64, 128, 256):
        xb = torch.cat([x] * (bs // 128 + 1))[:bs].numpy()
        gpu(xb)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(10):
            gpu(xb)
        torch.cuda.synchronize()
        print(f"inference alone (numpy in -> numpy out), batch {bs}: "
              f"{10 * bs / (time.perf_counter() - t):.0f} img/s", flush=True)
    for bs, workers in ((64, 8), (128, 16), (128, 32), (256, 32)):
        d = tempfile.mkdtemp()
        emb = Embedder(m, device="cuda", batch_size=bs, workers=workers,
                       cache=EmbeddingCache(Path(d) / "c.sqlite"))
        emb.runner()
        t = time.perf_counter()
        n = sum(len(b.paths) for b in emb.iter_embed(paths))
        dt = time.perf_counter() - t
        print(f"app pipeline cold, CUDA, batch {bs}, {workers} decode threads: {n} images "
              f"in {dt:.2f} s = {n / dt:.0f} img/s ({emb.describe()})", flush=True)
    t = time.perf_counter()
    for p in paths[:1000]:
        load_for_model(p, m.input_spec)
    print(f"decode+preprocess one thread: {1000 / (time.perf_counter() - t):.0f} img/s", flush=True)


if __name__ == "__main__":
    main()
