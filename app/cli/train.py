"""``python -m app train``: episodic meta-training of ProtoNet, MAML or the folder learner.

Example (the Omniglot protocol, Conv-4 ProtoNet):

    python -m app train --method protonet --backbone conv4 \\
        --data ../shared/data/omniglot --class-split 1200 --rotations --val-classes 172 \\
        --way 60 --shot 5 --query 5 --episodes 20000 --lr-step 2000 \\
        --out pretrained/omniglot-protonet-conv4
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.checkpoints import CheckpointError, load_checkpoint
from ..core.learners import TRAINABLE
from .common import add_data_flags, add_runtime_flags, apply_runtime, data_spec, fail, open_cache
from ..training.data import DatasetError, DataSpec, carve_validation, select_classes
from ..training.models import LearnerOptions, add_learner, build_model
from ..training.sampler import POOLS
from ..training.trainer import TrainConfig, state_path, train


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="meta-train a few-shot model on a class-folder dataset",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=TRAINABLE, required=True)
    p.add_argument("--backbone", choices=["conv4", "mobilenetv2"], default="conv4")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="checkpoint to write (PATH.safetensors + PATH.json); the training "
                        "state goes to PATH.state.pt")
    add_data_flags(p, subset_default="train")
    v = p.add_argument_group("validation (model selection)")
    v.add_argument("--val", metavar="DIR", help="separate validation dataset folder")
    v.add_argument("--val-classes", type=int, default=None, metavar="N",
                   help="hold out N training classes (before rotation; seeded) for validation "
                        "when --val is not given (default: 10%%, 0 = no validation)")
    v.add_argument("--val-way", type=int, default=5)
    v.add_argument("--val-shot", type=int, default=1)
    v.add_argument("--val-query", type=int, default=15)
    v.add_argument("--val-episodes", type=int, default=200)
    v.add_argument("--val-every", type=int, default=500, metavar="STEPS")
    e = p.add_argument_group("episodes and optimisation")
    e.add_argument("--way", type=int, required=True)
    e.add_argument("--shot", required=True, metavar="K[,K...]",
                   help="examples a class; several (e.g. 1,5): episodes cycle through them")
    e.add_argument("--pool", default="balanced", metavar="KIND[,KIND...]",
                   help="the episodes' query set, which a folder-aware learner reads as its "
                        "unlabeled pool: balanced, dirichlet (uneven class proportions, "
                        "Dirichlet(2)) or rest (all remaining images of the classes); several "
                        "(e.g. dirichlet,rest): episodes cycle through them with the shots; "
                        "validation uses the first")
    e.add_argument("--query", type=int, default=15)
    e.add_argument("--episodes", type=int, required=True,
                   help="optimiser steps (each averages --meta-batch episodes)")
    e.add_argument("--meta-batch", type=int, default=1, metavar="TASKS")
    e.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    e.add_argument("--lr-step", type=int, default=0, metavar="STEPS",
                   help="multiply the learning rate by --lr-gamma every STEPS steps")
    e.add_argument("--lr-gamma", type=float, default=0.5)
    e.add_argument("--weight-decay", type=float, default=0.0)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--save-every", type=int, default=0, metavar="STEPS",
                   help="write the training state every STEPS (default: at each validation)")
    e.add_argument("--time-limit", type=float, default=0, metavar="SECONDS",
                   help="stop after this much training time (validating and saving first)")
    e.add_argument("--resume", action="store_true",
                   help="continue from PATH.state.pt written by an interrupted run")
    m = p.add_argument_group("model")
    m.add_argument("--init", metavar="CHECKPOINT",
                   help="start from an existing model; train its --method learner (added if "
                        "absent) and keep its other learners")
    m.add_argument("--init-weights", metavar="FILE",
                   help="backbone weights (.safetensors, or a torch state dict read with "
                        "weights_only=True), e.g. ImageNet MobileNetV2")
    m.add_argument("--freeze-backbone", action="store_true",
                   help="keep the backbone fixed: its features are computed once and the "
                        "learner trains on them")
    m.add_argument("--image-size", type=int, default=None, help="input size (default: 28 for "
                   "conv4, 224 for mobilenetv2)")
    m.add_argument("--channels", type=int, choices=[1, 3], default=None)
    m.add_argument("--neck", choices=["auto", "none", "feature"], default="auto",
                   help="feature neck over backbone features (auto: feature for mobilenetv2)")
    m.add_argument("--neck-out-dim", type=int, default=None)
    m.add_argument("--no-center", action="store_true", help="neck: no mean-centering")
    m.add_argument("--no-l2norm", action="store_true", help="neck: no L2 normalisation")
    m.add_argument("--neck-scale", type=float, default=10.0)
    m.add_argument("--no-set-mean", action="store_true",
                   help="do not set the neck's centering mean from the training features")
    q = p.add_argument_group("MAML")
    q.add_argument("--first-order", action="store_true", help="first-order MAML")
    q.add_argument("--inner-steps", type=int, default=1)
    q.add_argument("--inner-lr", type=float, default=0.4)
    q.add_argument("--learn-inner-lr", action="store_true",
                   help="meta-learn a learning rate per step and parameter tensor")
    q.add_argument("--head-init", choices=["zero", "proto", "learned"], default="zero",
                   help="zero: zeroing trick, any N-way; proto: Proto-MAML; learned: "
                        "the paper's N-way head (only --way classes at test time)")
    q.add_argument("--adapt", choices=["auto", "all", "head"], default="auto")
    q.add_argument("--test-inner-steps", default="", metavar="LIST",
                   help="e.g. 1,3,5: after training pick the number of inner steps on validation")
    add_runtime_flags(p)
    p.add_argument("--half", action="store_true", help="store weights as float16")
    p.set_defaults(func=run)


def learner_options(a: argparse.Namespace) -> LearnerOptions:
    return LearnerOptions(method=a.method, neck=a.neck, neck_out_dim=a.neck_out_dim,
                          neck_center=not a.no_center, neck_l2norm=not a.no_l2norm,
                          neck_scale=a.neck_scale, adapt=a.adapt, head_init=a.head_init,
                          way=a.way, inner_steps=a.inner_steps, inner_lr=a.inner_lr,
                          learn_inner_lr=a.learn_inner_lr, first_order=a.first_order)


def run(a: argparse.Namespace) -> int:
    device = apply_runtime(a)
    try:
        steps = [int(s) for s in a.test_inner_steps.split(",") if s.strip()]
    except ValueError:
        return fail(f"--test-inner-steps {a.test_inner_steps!r}: expected numbers like 1,3,5")
    try:
        shots = [int(s) for s in a.shot.split(",") if s.strip()]
        if not shots or min(shots) < 1:
            raise ValueError
    except ValueError:
        return fail(f"--shot {a.shot!r}: expected a positive number, or several like 1,5")
    pools = [s.strip() for s in a.pool.split(",") if s.strip()]
    if not pools or set(pools) - set(POOLS):
        return fail(f"--pool {a.pool!r}: expected {', '.join(POOLS)} or several of them")
    if a.resume and not state_path(a.out).is_file():
        return fail(f"--resume: {state_path(a.out)} not found")
    if not a.resume and state_path(a.out).is_file():
        return fail(f"{state_path(a.out)} exists (an interrupted run?): pass --resume to "
                    "continue it, or delete it to start over")
    opts = learner_options(a)
    freeze = a.freeze_backbone
    card: dict = {}
    try:
        if a.init:
            model, card = load_checkpoint(a.init)
            card = {k: v for k, v in card.items()
                    if k not in ("format", "name", "architecture", "weights")}
            # measurements of the learner being retrained no longer hold
            card["accuracy"] = [e for e in card.get("accuracy", [])
                                if isinstance(e, dict) and e.get("method") != a.method]
            if a.method not in model.methods:
                add_learner(model, opts)
            if len(model.methods) > 1 and not freeze:
                print("note: the model has other learners sharing the backbone; freezing it",
                      file=sys.stderr)
                freeze = True
            model.default_method = model.default_method or a.method
        else:
            model = build_model(a.backbone, opts, a.image_size, a.channels, a.init_weights)
        spec = data_spec(a)
        classes = select_classes(spec)
        val_spec: DataSpec | None = None
        if a.val:
            val_spec = DataSpec(root=a.val, rotations=a.rotations)
            val_classes = select_classes(val_spec)
        else:
            n_val = a.val_classes if a.val_classes is not None else max(len(classes) // 10, 0)
            if n_val and len(classes) - n_val < a.way:
                n_val = 0
            classes, val_classes = carve_validation(classes, n_val, a.split_seed)
            if not val_classes:
                print("warning: no validation classes; the last weights are kept", file=sys.stderr)
    except (DatasetError, CheckpointError, ValueError, OSError) as e:
        return fail(str(e))
    hp = {k: v for k, v in vars(a).items() if k not in ("func", "command", "quiet")}
    card["hyperparameters"] = hp
    card["method"] = a.method
    cfg = TrainConfig(method=a.method, way=a.way, shot=max(shots), shots=shots, pools=pools,
                      query=a.query,
                      episodes=a.episodes, out=a.out, lr=a.lr, lr_step=a.lr_step,
                      lr_gamma=a.lr_gamma, weight_decay=a.weight_decay, meta_batch=a.meta_batch,
                      freeze_backbone=freeze, val_way=a.val_way, val_shot=a.val_shot,
                      val_query=a.val_query, val_episodes=a.val_episodes,
                      val_every=a.val_every, save_every=a.save_every, test_inner_steps=steps,
                      seed=a.seed, device=device, half=a.half, set_mean=not a.no_set_mean,
                      time_limit=a.time_limit,
                      extra_card={"train_classes": len(classes),
                                  "validation_classes": len(val_classes)})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    try:
        result = train(cfg, model, classes, val_classes or None, spec, val_spec, card,
                       resume=a.resume, cache=None if a.no_cache else open_cache(a), quiet=a.quiet)
    except (DatasetError, ValueError) as e:
        return fail(str(e))
    best = result["best"]
    msg = f"saved {a.out}.safetensors after {result['steps']} steps"
    if best["accuracy"] >= 0:
        msg += f" (best validation accuracy {100 * best['accuracy']:.2f}% at step {best['step']})"
    print(msg, file=sys.stderr)
    return 0
