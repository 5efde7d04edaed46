"""Episodic meta-training: the loop, periodic validation, best checkpoint, resume.

One optimiser step per meta-batch of ``meta_batch`` episodes (the loss is their mean);
``episodes`` counts optimiser steps. Episode ``i`` is drawn from seed ``(seed, i)``, so a
resumed run continues with exactly the episodes it would have seen.

With a frozen backbone the features of every training (and validation) image are computed
once (``Embedder`` + persistent cache, or in memory) and the learner trains on a feature
table; otherwise images are decoded once into memory and go through the backbone at
every episode.

The training state (weights, optimiser, scheduler, episode, best validation accuracy) is
written every ``save_every`` steps to ``OUT.state.pt`` with ``torch.save`` of plain
tensors/numbers/strings, and read back with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import io
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.atomic import atomic_write_bytes
from ..core.checkpoints import save_checkpoint
from ..core.learners.neck import FeatureNeck
from ..core.model import FewShotModel
from .data import ClassFolder, DataSpec
from .episodes import (PreparedEpisodes, episode_tensors, mean_ci95, prepare_episodes,
                       refresh_features,
                       run_feature_episodes)
from .models import set_inner_steps
from .sampler import EpisodeSampler
from ..core.progress import Progress


@dataclass
class TrainConfig:
    method: str
    way: int
    shot: int
    query: int
    episodes: int
    out: str
    lr: float = 1e-3
    lr_step: int = 0            # multiply lr by lr_gamma every lr_step steps (0 = never)
    lr_gamma: float = 0.5
    weight_decay: float = 0.0
    meta_batch: int = 1
    freeze_backbone: bool = False
    val_way: int = 5
    val_shot: int = 1
    val_query: int = 15
    val_episodes: int = 200
    val_every: int = 500
    save_every: int = 0         # 0 = with every validation
    test_inner_steps: list[int] = field(default_factory=list)  # MAML: pick on validation
    seed: int = 0
    device: str = "cpu"
    half: bool = False
    set_mean: bool = True
    time_limit: float = 0.0     # seconds; stop (validate, save) once exceeded (0 = none)
    shots: list[int] = field(default_factory=list)  # episodes cycle through these (default [shot])
    pools: list[str] = field(default_factory=lambda: ["balanced"])  # the episodes' query sets
    # (a folder-aware learner's pool), cycled with the shots; validation uses the first
    extra_card: dict[str, Any] = field(default_factory=dict)


def state_path(out: str) -> Path:
    return Path(out + ".state.pt")


def save_state(cfg: TrainConfig, model: FewShotModel, optim: torch.optim.Optimizer,
               sched: Any, step: int, best: dict[str, Any], history: list[dict[str, Any]],
               best_state: dict[str, torch.Tensor] | None) -> None:
    state = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optim.state_dict(),
        "scheduler": sched.state_dict(),
        "step": step,
        "best": json.dumps(best),
        "history": json.dumps(history),
        "architecture": json.dumps(model.architecture()),
        "config": json.dumps(asdict(cfg)),
    }
    if best_state is not None:
        state["best_model"] = best_state
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(state_path(cfg.out), buf.getvalue())


def load_state(path: Path) -> dict[str, Any]:
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError(f"{path}: not a training-state file")
    return state


def _mean_features_into_necks(model: FewShotModel, method: str, prepared: PreparedEpisodes) -> None:
    neck = getattr(model.learner(method), "neck", None)
    if isinstance(neck, FeatureNeck) and neck.center and prepared.features is not None:
        neck.set_mean(prepared.features.features.float())


def validate(model: FewShotModel, method: str, val: PreparedEpisodes | None, way: int) -> float | None:
    if val is None:
        return None
    refresh_features(model, val)
    return mean_ci95(run_feature_episodes(model, method, val, way))[0]


def train(cfg: TrainConfig, model: FewShotModel, train_classes: list[ClassFolder],
          val_classes: list[ClassFolder] | None, data: DataSpec, val_data: DataSpec | None,
          card: dict[str, Any], resume: bool = False, cache=None, quiet: bool = False
          ) -> dict[str, Any]:
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    model.to(device)
    method = cfg.method
    learner = model.learner(method)
    if cfg.freeze_backbone:
        for p in model.backbone.parameters():
            p.requires_grad_(False)
    want = "features" if cfg.freeze_backbone else "images"
    # All training items are needed: prepare with all_items (episodes are drawn later).
    shots, pools = cfg.shots or [cfg.shot], cfg.pools
    tr = prepare_episodes(model, train_classes, data, cfg.way, max(shots), cfg.query, 0,
                          cfg.seed, want=want, device=device, cache=cache, all_items=True,
                          quiet=quiet, label="train data",
                          pool="balanced" if "balanced" in pools else pools[0])  # needs most
    val = None
    if val_classes:
        vspec = val_data or data
        val = prepare_episodes(model, val_classes, vspec, cfg.val_way, cfg.val_shot,
                               cfg.val_query, cfg.val_episodes, cfg.seed + 12345,
                               want=want, device=device, cache=cache, quiet=quiet,
                               label="validation data", pool=pools[0])
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(optim, step_size=max(cfg.lr_step, 1),
                                            gamma=cfg.lr_gamma if cfg.lr_step > 0 else 1.0)
    step, best, history, best_state = 0, {"accuracy": -1.0, "step": 0}, [], None
    if resume and state_path(cfg.out).is_file():
        st = load_state(state_path(cfg.out))
        if json.loads(st["architecture"]) != json.loads(json.dumps(model.architecture())):
            raise ValueError(f"{state_path(cfg.out)}: saved for a different architecture")
        model.load_state_dict(st["model"])
        optim.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        step, best, history = int(st["step"]), json.loads(st["best"]), json.loads(st["history"])
        best_state = st.get("best_model")
        print(f"resumed from {state_path(cfg.out)} at step {step}", file=sys.stderr)
    elif cfg.freeze_backbone and cfg.set_mean:
        _mean_features_into_necks(model, method, tr)

    # one sampler a (pool, shot count); episode i uses the (i mod their number)-th
    samplers = [EpisodeSampler(tr.table, cfg.way, s, cfg.query, cfg.seed, pool=p)
                for p in pools for s in shots]
    save_every = cfg.save_every or cfg.val_every
    prog = Progress(cfg.episodes, f"train {method}", start_at=step, quiet=quiet)
    run_loss, run_acc, t0, steps_here = 0.0, 0.0, time.monotonic(), 0
    model.train()
    if cfg.freeze_backbone:
        model.backbone.eval()
    while step < cfg.episodes:
        optim.zero_grad(set_to_none=True)
        loss_sum, acc_sum = 0.0, 0.0
        for b in range(cfg.meta_batch):
            i = step * cfg.meta_batch + b
            ep = samplers[i % len(samplers)].episode(i)
            ys, yq = episode_tensors(ep, device)
            if tr.features is not None:
                x = tr.features.get(ep.items)
            else:
                assert tr.store is not None
                x = model.features(tr.store.batch(ep.items))
            ns = len(ep.support)
            loss, logits = learner.loss(x[:ns], ys, x[ns:], yq, cfg.way)
            (loss / cfg.meta_batch).backward()
            loss_sum += float(loss.detach())
            acc_sum += float((logits.argmax(1) == yq).float().mean())
        optim.step()
        sched.step()
        step += 1
        w = 0.02 if steps_here else 1.0  # running averages start at the first step of this run
        run_loss = (1 - w) * run_loss + w * loss_sum / cfg.meta_batch
        run_acc = (1 - w) * run_acc + w * acc_sum / cfg.meta_batch
        steps_here += 1
        note = f"loss {run_loss:.3f} acc {100 * run_acc:.1f}%"
        if best["accuracy"] >= 0:
            note += f" best val {100 * best['accuracy']:.2f}%@{best['step']}"
        prog.update(step, note)
        out_of_time = cfg.time_limit > 0 and time.monotonic() - t0 > cfg.time_limit
        do_val = step % cfg.val_every == 0 or step == cfg.episodes or out_of_time
        if do_val:
            acc = validate(model, method, val, cfg.val_way)
            model.train()
            if cfg.freeze_backbone:
                model.backbone.eval()
            history.append({"step": step, "train_loss": round(run_loss, 5),
                            "train_acc": round(run_acc, 5),
                            "val_acc": None if acc is None else round(acc, 5),
                            "lr": optim.param_groups[0]["lr"],
                            "seconds": round(time.monotonic() - t0, 1)})
            if acc is None or acc > best["accuracy"]:
                best = {"accuracy": -1.0 if acc is None else acc, "step": step}
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            prog.message(f"step {step}: train loss {run_loss:.4f} acc {100 * run_acc:.2f}%"
                         + ("" if acc is None else f", val {cfg.val_way}-way {cfg.val_shot}-shot "
                            f"{100 * acc:.2f}% (best {100 * best['accuracy']:.2f}% at {best['step']})"))
        if do_val or step % save_every == 0:
            save_state(cfg, model, optim, sched, step, best, history, best_state)
            if do_val:
                _write_checkpoint(cfg, model, best_state, best, history, card, data, val_data,
                                  val_classes, step)
        if out_of_time:
            prog.message(f"time limit of {cfg.time_limit:.0f} s reached at step {step}")
            break
    prog.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    chosen = _choose_inner_steps(cfg, model, method, val)
    if chosen is not None:
        card.setdefault("hyperparameters", {})["test_inner_steps"] = chosen
    _write_checkpoint(cfg, model, None, best, history, card, data, val_data, val_classes, step)
    return {"best": best, "history": history, "steps": step}


def _choose_inner_steps(cfg: TrainConfig, model: FewShotModel, method: str,
                        val: PreparedEpisodes | None) -> dict[str, Any] | None:
    learner = model.learner(method)
    if not cfg.test_inner_steps or val is None or not learner.capabilities.gradient_steps:
        return None
    scores = {}
    for n in cfg.test_inner_steps:
        set_inner_steps(learner, n)
        scores[n] = validate(model, method, val, cfg.val_way)
    best_n = max(scores, key=lambda n: (scores[n], -n))
    set_inner_steps(learner, best_n)
    print("inner steps at test time (validation accuracy): "
          + ", ".join(f"{n}: {100 * a:.2f}%" for n, a in scores.items()) + f" -> {best_n}",
          file=sys.stderr)
    return {"chosen": best_n, "validation": {str(n): round(a, 5) for n, a in scores.items()}}


def _write_checkpoint(cfg: TrainConfig, model: FewShotModel,
                      best_state: dict[str, torch.Tensor] | None, best: dict[str, Any],
                      history: list[dict[str, Any]], card: dict[str, Any], data: DataSpec,
                      val_data: DataSpec | None, val_classes: list[ClassFolder] | None,
                      step: int) -> None:
    """Save the best weights so far (or the current ones) as ``cfg.out`` with its card."""
    if best_state is not None:
        current = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(best_state)
    full = dict(card)
    hp = dict(full.get("hyperparameters", {}))
    full["hyperparameters"] = hp
    full["method"] = cfg.method
    full["training"] = {
        "data": data.describe(),
        "validation": ({"data": (val_data or data).describe(),
                        "classes": len(val_classes or []),
                        "way": cfg.val_way, "shot": cfg.val_shot, "query": cfg.val_query,
                        "episodes": cfg.val_episodes,
                        "pool": cfg.pools[0]} if val_classes else None),
        "episodes_done": step,
        "episodes_planned": cfg.episodes,
        "tasks_per_step": cfg.meta_batch,
        "best_step": best["step"],
        "best_validation_accuracy": None if best["accuracy"] < 0 else round(best["accuracy"], 5),
        "history": history[-50:],
        "device": cfg.device,
        "torch": torch.__version__,
        "platform": platform.platform(),
        **cfg.extra_card,
    }
    full.setdefault("accuracy", [])
    save_checkpoint(model, cfg.out, full, half=cfg.half)
    if best_state is not None:
        model.load_state_dict(current)
