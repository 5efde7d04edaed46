"""``python -m tools.photo STEP``: the photo models' build recipe (see ``__init__.py``)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from app.core.checkpoints import load_checkpoint, save_checkpoint

from . import cards, recipe
from .texts import (DUAL_CARD, DUAL_FOLDER_LABEL, DUAL_META_LABEL, DUAL_META_METHOD,
                    DUAL_TWO_LABEL, DUAL_TWO_METHOD, PROFILES)

REPO = cards.REPO
DATA = REPO.parent / "shared" / "data"


def cmd_init(a: argparse.Namespace) -> int:
    if a.backbone == "mobilenetv2":
        weights = recipe.find_mobilenet_weights()
        backbone, prov = recipe.mobilenet_backbone(weights), recipe.mobilenet_provenance(weights)
    else:
        weights = recipe.find_lite_weights(0)
        backbone, prov = recipe.lite_backbone(weights, 0), recipe.lite_provenance(weights, 0)
    norm = a.norm or ("imagenet" if a.backbone == "mobilenetv2" else "lite")
    proj = a.proj_dim or None
    learners = {  # with --center train, `train` sets the centring mean from training features
        "protonet": recipe.protonet_learner(a.center, out_dim=proj, scale=a.scale),
        "maml": recipe.maml_learner(a.center, out_dim=proj, scale=a.scale,
                                    inner_steps=a.inner_steps, inner_lr=a.inner_lr),
        "centroid": recipe.centroid_learner(),
    }
    model = recipe.photo_model(backbone, learners, recipe.input_spec(a.size, a.crop, norm),
                               default_method="protonet")
    save_checkpoint(model, a.out, {"starting_weights": prov}, half=True)
    print(f"wrote {a.out} ({json.dumps(prov)})")
    return 0


def _images(folder: str) -> list[str]:
    from app.core.images import is_image_path

    return sorted(str(p) for p in Path(folder).rglob("*") if p.is_file() and is_image_path(p))


def _embedder(model_path: str, threads: int):  # noqa: ANN202
    from app.core.cache import EmbeddingCache
    from app.core.embedding import Embedder

    torch.set_num_threads(threads)
    model, _ = load_checkpoint(model_path)
    return Embedder(model, device="cpu", batch_size=64, cache=EmbeddingCache(), workers=threads,
                    threads=threads)


def cmd_warm(a: argparse.Namespace) -> int:
    emb = _embedder(a.model, a.threads)
    for d in a.dirs:
        t0 = time.monotonic()
        res = emb.embed_paths(_images(d))
        for p in res.problems:
            print(f"problem: {p.path}: {p.reason}", file=sys.stderr)
        print(f"{d}: {len(res.paths)} embedded, {len(res.problems)} problems, "
              f"{time.monotonic() - t0:.0f} s ({emb.backend})", flush=True)
    return 0


def _centroid_accuracy(per: list[np.ndarray], way: int, shot: int, episodes: int,
                       query: int = 15, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Nearest centroid over L2-normalised features, and with task centring (the support
    mean subtracted, normalised again): mean and 95% CI over the same episodes."""
    l2 = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    rng = np.random.default_rng(seed)
    accs: dict[str, list[float]] = {"L2": [], "task centring": []}
    yq = np.repeat(np.arange(way), query)
    for _ in range(episodes):
        s, q = [], []
        for c in rng.choice(len(per), way, replace=False):
            pick = rng.choice(len(per[c]), shot + query, replace=False)
            s.append(per[c][pick[:shot]])
            q.append(per[c][pick[shot:]])
        s, q = l2(np.stack(s)), l2(np.concatenate(q))
        m = s.reshape(-1, s.shape[-1]).mean(0)
        for k, (fs, fq) in {"L2": (s, q), "task centring": (l2(s - m), l2(q - m))}.items():
            d = ((fq[:, None] - fs.mean(1)[None]) ** 2).sum(-1)
            accs[k].append(float((d.argmin(1) == yq).mean()))
    return {k: (100 * np.mean(v), 196 * np.std(v, ddof=1) / np.sqrt(len(v)))
            for k, v in accs.items()}


def cmd_probe(a: argparse.Namespace) -> int:
    import os

    from app.training.data import discover_classes

    roots = [("mini-ImageNet val", str(DATA / "mini-imagenet" / "val"))]
    if a.clothing:
        roots.append(("clothing-small (check only)", os.pathsep.join(
            str(DATA / "clothing-small" / s) for s in ("train", "validation", "test"))))
    for model_path in a.model:
        emb = _embedder(model_path, 1)
        for name, root in roots:
            classes = discover_classes(root)
            res = emb.embed_paths([f for c in classes for f in c.files]).as_dict()
            per = [np.stack([res[f] for f in c.files]) for c in classes]
            for way, shot in ((5, 1), (5, 5)):
                r = _centroid_accuracy(per, way, shot, a.episodes)
                print(f"{model_path} {name} {way}w{shot}s: "
                      + "; ".join(f"{k} {m:.2f}±{c:.2f}" for k, (m, c) in r.items()), flush=True)
    return 0


def cmd_table(a: argparse.Namespace) -> int:
    methods = a.methods.split(",")
    wanted = set(a.columns.split(","))
    results: dict[str, dict[str, dict]] = {m: {} for m in methods}
    if a.json and Path(a.json).is_file():  # resume: cells already measured are kept
        results.update(json.loads(Path(a.json).read_text()).get("results", {}))
    for key, _h, data, way, shot in cards.COLUMNS:
        if key not in wanted:
            continue
        for m in methods:
            r = cards.evaluate(a.model, m, data, way, shot, a.episodes, a.seed, a.threads)
            results.setdefault(m, {})[key] = r
            print(f"{m} {key}: {cards.cell(r)}", file=sys.stderr, flush=True)
            if a.json:
                Path(a.json).write_text(json.dumps({"results": results}, indent=1))
    print(cards.table_markdown(results, methods, {}))
    return 0


def cmd_finalize(a: argparse.Namespace) -> int:
    profile = PROFILES[a.profile]
    model, src_card = load_checkpoint(a.src)
    if a.default not in model.methods:
        raise SystemExit(f"{a.src} has no {a.default!r} learner ({model.methods})")
    model.default_method = a.default
    read = lambda p: json.loads(Path(p).read_text()) if p else None  # noqa: E731
    table = read(a.table)
    card = cards.finalize_card(model, src_card, profile, a.default, read(a.protonet_card),
                               table["results"] if table else None)
    save_checkpoint(model, a.out, card, half=True)
    cards.write_md(Path(a.out), card, profile)
    print(f"wrote {a.out}.safetensors / .json / .md (default method {a.default})")
    return 0


def _given(**options: object) -> dict[str, object]:
    """The options given on the command line (the learner's own defaults for the rest)."""
    return {k: v for k, v in options.items() if v is not None}


DUAL_SIZE = 240  # Lite1's own resolution; MobileNetV2 measured no worse there than at 224


def cmd_dual(a: argparse.Namespace) -> int:
    """MobileNetV2 (the shipped ``photo-mobilenetv2`` backbone) and EfficientNet-Lite1 on
    the same crop, each normalising the pixels its own way, features L2-normalised each and
    concatenated (``Concat``); learners: the folder-aware one with photo-mobilenetv2's
    settings, optionally (``--meta-folder``) a second one whose settings were meta-learned by
    ``python -m app train --method folder`` (its confidence temperature set by
    ``--meta-calib``; it is then the default), and the centroid baseline at this width.
    ``--two-views`` adds, as the default, folder-meta centred and uncentred as one ensemble.
    ``--tau-classes`` makes folder-meta's temperature grow with the classes beyond that many;
    ``--whiten`` makes folder-two's views whiten folders of at least ``--whiten-from`` images
    (to the full power from ``--whiten-min`` on).
    ``--knn``, ``--knn-scale``, ``--knn-min`` set the folder learners' neighbour count
    (``neighbours_for``), ``--axes`` their compact space's width on large folders,
    ``--mix-anchors`` over how many folder images their prototypes' pool means are taken."""
    from app.core.backbones import Concat
    from app.core.inputspec import InputSpec
    from app.core.learners import build_learner

    base, base_card = load_checkpoint(a.base)
    weights = recipe.find_lite_weights(1)
    backbone = Concat([{"backbone": base.backbone.config(), "mean": recipe.IMAGENET_MEAN,
                        "std": recipe.IMAGENET_STD},
                       {"backbone": {"name": "efficientnet_lite", "variant": 1},
                        "mean": recipe.LITE_MEAN, "std": recipe.LITE_STD}])
    backbone.parts[0].load_state_dict(base.backbone.state_dict())
    backbone.parts[1].load_state_dict(recipe.lite_backbone(weights, 1).state_dict())
    shared = _given(knn=a.knn, knn_scale=a.knn_scale, knn_min=a.knn_min,  # every folder learner's
                    proj_dim=a.axes, mix_anchors=a.mix_anchors)
    folder = {**base.learner("folder").config(), **shared}
    if a.meta_folder:  # two folder-aware learners: say which is which
        folder["label"] = DUAL_FOLDER_LABEL
    learners = {"folder": build_learner(folder)}
    card = {**DUAL_CARD, "starting_weights": {
        "parts": [base_card.get("starting_weights", {}), recipe.lite_provenance(weights, 1)]}}
    if a.meta_folder:
        trained_model, trained = load_checkpoint(a.meta_folder)
        config = {**trained_model.learner("folder").config(), **shared,
                  "label": DUAL_META_LABEL}
        if a.meta_calib is not None:
            config["calib"] = a.meta_calib
        if a.tau_classes:
            config["tau_classes"] = a.tau_classes
        learners = {"folder-meta": build_learner(config), **learners}  # the default, first
        card["methods"] = {**card["methods"], "folder-meta": DUAL_META_METHOD}
        card["training"] = {"folder-meta": cards.training_summary(trained),
                            "calib": a.meta_calib if a.meta_calib is not None else "as trained"}
        if a.two_views:  # the meta-learned learner centred and uncentred, together
            config = {k: v for k, v in learners["folder-meta"].config().items() if k != "label"}
            if a.whiten:
                config.update(_given(whiten=a.whiten, whiten_eps=a.whiten_eps,
                                     whiten_min=a.whiten_min, whiten_from=a.whiten_from))
            two = {"method": "ensemble", "members": [config, {**config, "centre": "none"}],
                   "label": DUAL_TWO_LABEL}
            learners = {"folder-two": build_learner(two), **learners}  # the default, first
            card["methods"] = {**card["methods"], "folder-two": DUAL_TWO_METHOD}
    spec = InputSpec(size=(DUAL_SIZE, DUAL_SIZE), channels=3, mean=(0.0,) * 3,
                     std=(1.0,) * 3, resize="center_crop", crop_fraction=1.0)  # [0, 1]
    centroid = recipe.centroid_learner().config()  # the baseline, at this backbone's width
    centroid["neck"]["in_dim"] = backbone.out_dim
    learners["centroid"] = build_learner({**centroid, "label": "Nearest centroid (examples only)"})
    model = recipe.photo_model(backbone.eval(), learners, spec, default_method=next(iter(learners)))
    save_checkpoint(model, a.out, card, half=True)
    print(f"wrote {a.out}: {json.dumps(card['starting_weights'])[:200]}...")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.photo",
                                 description="Build the shipped photo models (tools/photo).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("init", help="an untrained starting checkpoint")
    i.add_argument("--backbone", choices=["mobilenetv2", "lite0"], required=True)
    i.add_argument("--out", required=True)
    i.add_argument("--size", type=int, default=224)
    i.add_argument("--crop", type=float, default=1.0)
    i.add_argument("--norm", choices=["imagenet", "lite"],
                   help="pixel normalisation (default: what the backbone was trained on)")
    i.add_argument("--proj-dim", type=int, default=0, help="learned projection (0 = none)")
    i.add_argument("--scale", type=float, default=4.0)
    i.add_argument("--center", choices=["task", "train", "none"], default="task")
    i.add_argument("--inner-steps", type=int, default=5)
    i.add_argument("--inner-lr", type=float, default=0.1)
    i.set_defaults(func=cmd_init)
    w = sub.add_parser("warm", help="embed folders into the persistent cache")
    w.add_argument("--model", required=True)
    w.add_argument("--threads", type=int, default=1)
    w.add_argument("dirs", nargs="+")
    w.set_defaults(func=cmd_warm)
    p = sub.add_parser("probe", help="frozen features' nearest-centroid accuracy on val")
    p.add_argument("--model", nargs="+", required=True)
    p.add_argument("--episodes", type=int, default=600)
    p.add_argument("--clothing", action="store_true", help="also clothing-small (check only)")
    p.set_defaults(func=cmd_probe)
    t = sub.add_parser("table", help="the accuracy table via `python -m app evaluate`")
    t.add_argument("--model", default="pretrained/photo-mobilenetv2")
    t.add_argument("--methods", default="centroid,protonet,maml")
    t.add_argument("--columns", default=",".join(c[0] for c in cards.COLUMNS))
    t.add_argument("--episodes", type=int, default=600)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--json", help="write all results here (updated after every cell)")
    t.set_defaults(func=cmd_table)
    f = sub.add_parser("finalize", help="a trained model and its card into pretrained/")
    f.add_argument("--profile", choices=sorted(PROFILES), required=True)
    f.add_argument("--src", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--default", required=True)
    f.add_argument("--protonet-card", help="card of the run that trained the protonet learner")
    f.add_argument("--table", help="JSON written by `table --json`")
    f.set_defaults(func=cmd_finalize)
    d = sub.add_parser("dual", help="build photo-mobilenetv2-lite1 (no training)")
    d.add_argument("--out", required=True)
    d.add_argument("--base", default=str(REPO / "pretrained" / "photo-mobilenetv2"))
    d.add_argument("--meta-folder", metavar="CHECKPOINT",
                   help="add 'folder-meta': the folder learner trained in this checkpoint")
    d.add_argument("--meta-calib", type=float,
                   help="folder-meta's confidence temperature (default: as trained)")
    d.add_argument("--tau-classes", type=int,
                   help="with --meta-folder: its temperature grows with ln(classes) above "
                        "this many classes (tau_classes)")
    d.add_argument("--whiten", type=float,
                   help="with --two-views: its views whiten folders by their covariance to this "
                        "power (whiten; 0.5 in the shipped card)")
    d.add_argument("--whiten-eps", type=float,
                   help="the whitening's shrinkage, times the mean variance (default: the "
                        "learner's, 0.1)")
    d.add_argument("--whiten-min", type=int,
                   help="the whitening's full power from folders of this many images, less for "
                        "smaller ones (default: the learner's, 500)")
    d.add_argument("--whiten-from", type=int,
                   help="folders of fewer images are not whitened (default: --whiten-min)")
    d.add_argument("--two-views", action="store_true",
                   help="with --meta-folder: add 'folder-two' (the default), folder-meta "
                        "centred and uncentred as one ensemble")
    d.add_argument("--knn", type=int, help="the folder learners' most neighbours")
    d.add_argument("--knn-scale", type=float,
                   help="neighbours: this times the square root of the images a class has")
    d.add_argument("--knn-min", type=int, help="the folder learners' fewest neighbours")
    d.add_argument("--axes", type=int, help="the folder learners' principal axes at 20,000 "
                                            "anchors (proj_dim; more for smaller folders)")
    d.add_argument("--mix-anchors", type=int,
                   help="the folder learners' prototypes take their pool means over a seeded "
                        "subset of this many anchors on larger folders (mix_anchors; 0: all)")
    d.set_defaults(func=cmd_dual)
    a = ap.parse_args(argv)
    return a.func(a)


if __name__ == "__main__":
    raise SystemExit(main())
