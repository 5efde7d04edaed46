"""What an episode's items become before a learner sees them.

* ``ImageStore``: preprocessed images held in memory (small images such as 28x28 Omniglot,
  or anything rotated): decoded once with ``app.core.images``, rotated on the fly.
* ``embed_items``: the backbone features of items, computed once -- through the
  persistent ``EmbeddingCache`` with ``Embedder`` for plain image files, or in memory from an
  ``ImageStore`` (rotated or preloaded data). Frozen-backbone training and evaluation then
  run on this feature table.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import torch

from ..core.embedding import Embedder
from ..core.images import ImageError, load_for_model
from ..core.model import FewShotModel, InputSpec
from .data import ClassFolder, ItemTable

# Images up to this many pixels are preloaded into memory by default.
PRELOAD_MAX_PIXELS = 64 * 64


def should_preload(spec: InputSpec, rotations: bool) -> bool:
    return rotations or spec.size[0] * spec.size[1] <= PRELOAD_MAX_PIXELS


def _decode(path: str, spec: InputSpec) -> np.ndarray | str:
    try:
        return load_for_model(path, spec)
    except ImageError as e:
        return e.reason
    except Exception as e:  # one odd file never stops a dataset
        return f"cannot decode image ({type(e).__name__}: {e})"


def decode_files(files: Sequence[str], spec: InputSpec, workers: int = 2,
                 progress: Callable[[int, int], None] | None = None
                 ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Decode + preprocess files with a thread pool: (arrays by path, problems by path)."""
    good: dict[str, np.ndarray] = {}
    bad: dict[str, str] = {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for i, (p, r) in enumerate(zip(files, pool.map(lambda f: _decode(f, spec), files,
                                                        chunksize=64))):
            if isinstance(r, str):
                bad[p] = r
            else:
                good[p] = r
            if progress and (i + 1) % 512 == 0:
                progress(i + 1, len(files))
    if progress:
        progress(len(files), len(files))
    return good, bad


def drop_bad_files(classes: Sequence[ClassFolder], bad: dict[str, str]) -> list[ClassFolder]:
    for p, reason in sorted(bad.items()):
        print(f"warning: skipped {p}: {reason}", file=sys.stderr)
    return [ClassFolder(c.name, tuple(f for f in c.files if f not in bad)) for c in classes]


class ImageStore:
    """Preprocessed images of a table's files, in memory (on ``device``)."""

    def __init__(self, table: ItemTable, arrays: dict[str, np.ndarray],
                 device: torch.device | str = "cpu") -> None:
        self.table = table
        if not arrays:
            raise ValueError("no images to hold")
        blank = np.zeros_like(next(iter(arrays.values())))  # files no episode needs
        self.images = torch.from_numpy(np.stack([arrays.get(f, blank) for f in table.files])
                                       ).to(device)
        self.item_file = torch.from_numpy(table.item_file).to(device)
        self.item_rot = torch.from_numpy(table.item_rot).to(device)
        self.device = torch.device(device)

    def batch(self, items: np.ndarray | torch.Tensor) -> torch.Tensor:
        idx = torch.as_tensor(items, device=self.device)
        x = self.images[self.item_file[idx]]
        if not self.table.rotated:
            return x
        rots = self.table.item_rot[np.asarray(items if isinstance(items, np.ndarray)
                                              else items.cpu().numpy())]
        out = x.clone()
        for rot in (90, 180, 270):
            sel = np.nonzero(rots == rot)[0]
            if len(sel):
                s = torch.as_tensor(sel, device=self.device)
                out[s] = torch.rot90(x[s], rot // 90, dims=(-2, -1))
        return out


@torch.no_grad()
def features_from_store(model: FewShotModel, store: ImageStore, items: np.ndarray,
                        batch_size: int = 512,
                        progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Backbone features of ``items`` (eval mode), shape (len(items), D)."""
    was = model.backbone.training
    model.backbone.eval()
    try:
        out = []
        for i in range(0, len(items), batch_size):
            out.append(model.features(store.batch(items[i:i + batch_size])).float())
            if progress:
                progress(min(i + batch_size, len(items)), len(items))
        return torch.cat(out) if out else torch.zeros(0, 0)
    finally:
        model.backbone.train(was)


def features_from_files(model: FewShotModel, paths: Sequence[str], cache=None,
                        device: str | torch.device = "auto", batch_size: int = 64,
                        progress: Callable[[int, int], None] | None = None
                        ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Features of image files via ``Embedder`` and the persistent cache:
    (features by path, problems by path)."""
    embedder = Embedder(model, device=device, batch_size=batch_size, cache=cache,
                        workers=min(4, os.cpu_count() or 2))
    result = embedder.embed_paths(list(paths), progress=progress)
    return result.as_dict(), {p.path: p.reason for p in result.problems}
