import json
import pickle

import pytest
import torch

from app.core.backbones import Conv4, Identity
from app.core.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from app.core.learners import MAML, ProtoNet
from app.core.model import OMNIGLOT_INPUT, FewShotModel


def _model():
    torch.manual_seed(0)
    return FewShotModel(Conv4(1, hidden=8, out_channels=8),
                        {"protonet": ProtoNet(),
                         "maml": MAML(neck={"name": "feature", "in_dim": 8}, adapt="head",
                                      head_init="proto", inner_steps=2, learn_inner_lr=True)},
                        OMNIGLOT_INPUT, default_method="protonet").eval()


def test_round_trip_same_outputs(tmp_path):
    m = _model()
    card = {"training": {"data": "toy"}, "accuracy": [{"way": 5, "shot": 1, "accuracy": 0.5}]}
    save_checkpoint(m, tmp_path / "toy", card)
    assert (tmp_path / "toy.safetensors").is_file() and (tmp_path / "toy.json").is_file()
    m2, card2 = load_checkpoint(tmp_path / "toy")
    assert card2["training"] == {"data": "toy"}
    assert card2["architecture"]["default_method"] == "protonet"
    x = torch.rand(6, 1, 28, 28)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        for method in ("protonet", "maml"):
            p1 = m.learner(method).fit(m.features(x), y).predict_proba(m.features(x))
            p2 = m2.learner(method).fit(m2.features(x), y).predict_proba(m2.features(x))
            assert torch.allclose(p1, p2, atol=1e-6)


def test_half_precision_round_trip(tmp_path):
    m = _model()
    save_checkpoint(m, tmp_path / "h", half=True)
    m2, card = load_checkpoint(tmp_path / "h.safetensors")
    assert card["weights"]["dtype"] == "float16"
    for (k, a), b in zip(m.state_dict().items(), m2.state_dict().values()):
        if a.is_floating_point():
            assert b.dtype == torch.float32
            assert torch.allclose(a, b, atol=1e-2, rtol=1e-2), k


class Boom:
    def __reduce__(self):
        return (exec, ("open('PWNED','w').write('x')",))


def test_pickle_renamed_to_checkpoint_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = _model()
    save_checkpoint(m, tmp_path / "evil")
    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="evil.safetensors.*pickle"):
        load_checkpoint(tmp_path / "evil")
    torch.save({"x": Boom()}, tmp_path / "evil.safetensors")
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_checkpoint(tmp_path / "evil")
    assert not (tmp_path / "PWNED").exists()


def test_truncated_weights_are_refused(tmp_path):
    save_checkpoint(_model(), tmp_path / "t")
    w = tmp_path / "t.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="t.safetensors.*SHA-256"):
        load_checkpoint(tmp_path / "t")
    with pytest.raises(CheckpointError, match="t.safetensors.*not a readable safetensors"):
        load_checkpoint(tmp_path / "t", verify=False)


def test_bad_cards(tmp_path):
    save_checkpoint(_model(), tmp_path / "c")
    card = tmp_path / "c.json"
    good = card.read_text()
    card.write_text("{not json")
    with pytest.raises(CheckpointError, match="c.json: not valid JSON"):
        load_checkpoint(tmp_path / "c")
    card.write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="c.json: not a fewshot-label/1 model card"):
        load_checkpoint(tmp_path / "c")
    d = json.loads(good)
    d["architecture"]["backbone"]["hidden"] = 16
    card.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match="does not fit the card's architecture"):
        load_checkpoint(tmp_path / "c")
    with pytest.raises(CheckpointError, match="nothing.json: model card not found"):
        load_checkpoint(tmp_path / "nothing")


def test_every_error_is_one_line(tmp_path):
    save_checkpoint(_model(), tmp_path / "o")
    (tmp_path / "o.safetensors").write_bytes(b"\x00" * 50)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "o", verify=False)
    assert "\n" not in str(e.value)


def test_full_maml_model_round_trip(tmp_path):
    neck = {"name": "conv4", "input_shape": [1, 28, 28], "in_channels": 1, "hidden": 8,
            "out_channels": 8, "track_running_stats": False}
    m = FewShotModel(Identity((1, 28, 28)), {"maml": MAML(neck=neck, inner_steps=1)},
                     OMNIGLOT_INPUT).eval()
    save_checkpoint(m, tmp_path / "fm")
    m2, _ = load_checkpoint(tmp_path / "fm")
    x = torch.rand(4, 1, 28, 28)
    y = torch.tensor([0, 1, 0, 1])
    p1 = m.learner().fit(m.features(x), y).predict_proba(m.features(x))
    p2 = m2.learner().fit(m2.features(x), y).predict_proba(m2.features(x))
    assert torch.allclose(p1, p2, atol=1e-6)


def test_loading_the_shipped_photo_models_imports_neither_torchvision_nor_dynamo():
    """torchvision's import loads torch._dynamo (164 MB resident, seconds of start-up), so
    the app and ``classify`` build MobileNetV2 themselves; a fresh process proves it."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    code = ("import sys; from app.core.checkpoints import load_checkpoint\n"
            "for name in ('photo-mobilenetv2-lite1', 'photo-mobilenetv2'):\n"
            "    model, _ = load_checkpoint('pretrained/' + name)\n"
            "    assert model.backbone is not None\n"
            "print(sorted(m for m in ('torchvision', 'torch._dynamo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert out.strip() == "[]"
