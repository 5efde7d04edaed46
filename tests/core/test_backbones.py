"""EfficientNet-Lite0 backbone: shape, TF "SAME" padding, parameter layout, config and
checkpoint round-trips, ONNX export; MobileNetV2 against torchvision's. Random init: no
dependency on the weights packages."""
import numpy as np
import pytest
import torch

from app.core.backbones import (EfficientNetLite0Features, MobileNetV2Features, SameConv2d,
                                build_backbone)
from app.core.checkpoints import load_checkpoint, save_checkpoint
from app.core.learners import ProtoNet
from app.core.model import FewShotModel, InputSpec


def _randomise_batchnorm(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def _lite0(seed: int = 0) -> EfficientNetLite0Features:
    torch.manual_seed(seed)
    bb = EfficientNetLite0Features()
    _randomise_batchnorm(bb, seed)
    return bb.eval()


@pytest.mark.parametrize("size", [(224, 224), (97, 130)])
def test_output_is_1280_d_for_any_input_size(size):
    bb = _lite0()
    with torch.no_grad():
        out = bb(torch.randn(2, 3, *size))
    assert out.shape == (2, EfficientNetLite0Features.out_dim) == (2, 1280)
    assert torch.isfinite(out).all() and (out >= 0).all() and (out <= 6).all()  # ReLU6 + mean
    assert out.std() > 0


def test_same_padding_puts_the_extra_row_and_column_bottom_right():
    torch.manual_seed(0)
    conv = SameConv2d(2, 3, 3, stride=2)
    x = torch.randn(1, 2, 8, 8)  # TF: out 4x4, total padding 1 -> (0 top/left, 1 bottom/right)
    ref = torch.nn.functional.conv2d(torch.nn.functional.pad(x, [0, 1, 0, 1]), conv.weight,
                                     stride=2)
    sym = torch.nn.functional.conv2d(x, conv.weight, stride=2, padding=1)
    out = conv(x)
    assert out.shape == ref.shape == (1, 3, 4, 4)
    assert torch.allclose(out, ref) and not torch.allclose(out, sym)
    conv5 = SameConv2d(2, 2, 5, stride=1, groups=2)
    assert conv5(x).shape == (1, 2, 8, 8)


def test_parameter_names_follow_the_efficientnet_lite_pytorch_layout():
    keys = set(EfficientNetLite0Features().state_dict())
    for k in ("_conv_stem.weight", "_bn0.running_var", "_blocks.0._depthwise_conv.weight",
              "_blocks.15._project_conv.weight", "_conv_head.weight", "_bn1.num_batches_tracked"):
        assert k in keys
    assert "_blocks.0._expand_conv.weight" not in keys  # expand ratio 1: no expansion
    assert not any(k.startswith("_blocks.16.") or "_se_" in k or "_fc" in k for k in keys)
    shapes = {k: tuple(v.shape) for k, v in EfficientNetLite0Features().state_dict().items()}
    assert shapes["_conv_stem.weight"] == (32, 3, 3, 3)
    assert shapes["_blocks.3._depthwise_conv.weight"] == (144, 1, 5, 5)
    assert shapes["_conv_head.weight"] == (1280, 320, 1, 1)


def test_config_round_trip_builds_the_same_network():
    bb = _lite0(1)
    again = build_backbone(bb.config())
    assert isinstance(again, EfficientNetLite0Features)
    again.load_state_dict(bb.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(again.eval()(x), bb(x), atol=1e-6)


def _model() -> FewShotModel:
    spec = InputSpec(size=(64, 64), mean=(0.5,) * 3, std=(0.5,) * 3, resize="center_crop",
                     crop_fraction=1.0)
    return FewShotModel(_lite0(2), {"protonet": ProtoNet()}, spec).eval()


def test_checkpoint_round_trip(tmp_path):
    model = _model()
    save_checkpoint(model, tmp_path / "lite", {"note": "test"})
    loaded, card = load_checkpoint(tmp_path / "lite")
    assert card["architecture"]["backbone"]["name"] == "efficientnet_lite0"
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded.features(x), model.features(x), atol=1e-5)


def test_onnx_export_matches_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    from app.core.onnx_backend import OnnxBackbone, max_relative_error

    model = _model()
    ort_bb = OnnxBackbone.for_model(model, tmp_path, threads=1, run_batch=2)
    x = torch.randn(3, *model.input_spec.shape)
    with torch.no_grad():
        ref = model.features(x).numpy()
    out = ort_bb(x.numpy())
    assert out.shape == ref.shape and np.abs(ref).max() > 1e-3
    assert max_relative_error(out, ref) < 1e-4


def _concat(seed: int = 3):
    from app.core.backbones import Concat

    torch.manual_seed(seed)
    bb = Concat([{"backbone": {"name": "conv4", "in_channels": 3, "hidden": 8, "out_channels": 8},
                  "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
                 {"backbone": {"name": "efficientnet_lite", "variant": 1},
                  "mean": [0.5] * 3, "std": [0.5] * 3}])
    _randomise_batchnorm(bb, seed)
    return bb.eval()


def test_concat_normalises_each_part_its_own_way_and_joins_unit_vectors():
    bb = _concat()
    x = torch.rand(2, 3, 48, 48)  # plain [0, 1] pixels
    with torch.no_grad():
        out = bb(x)
        a = bb.parts[0]((x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
                        / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        b = bb.parts[1]((x - 0.5) / 0.5)
    assert out.shape == (2, a.shape[1] + 1280)
    assert torch.allclose(out[:, :a.shape[1]], torch.nn.functional.normalize(a, dim=1), atol=1e-6)
    assert torch.allclose(out[:, a.shape[1]:], torch.nn.functional.normalize(b, dim=1), atol=1e-6)
    with pytest.raises(ValueError, match="at least two"):
        build_backbone({"name": "concat", "parts": bb.config()["parts"][:1]})


def test_concat_survives_a_checkpoint_and_onnx(tmp_path):
    bb = _concat()
    spec = InputSpec(size=(48, 48), mean=(0.0,) * 3, std=(1.0,) * 3, resize="center_crop",
                     crop_fraction=1.0)
    model = FewShotModel(bb, {"protonet": ProtoNet()}, spec).eval()
    save_checkpoint(model, tmp_path / "dual", {})
    loaded, card = load_checkpoint(tmp_path / "dual")
    assert [p["backbone"]["name"] for p in card["architecture"]["backbone"]["parts"]] == \
        ["conv4", "efficientnet_lite"]
    x = torch.rand(3, 3, 48, 48)
    with torch.no_grad():
        ref = model.features(x)
        assert torch.allclose(loaded.features(x), ref, atol=1e-5)
    pytest.importorskip("onnxruntime")
    from app.core.onnx_backend import OnnxBackbone, max_relative_error

    out = OnnxBackbone.for_model(loaded, tmp_path, threads=1, run_batch=2)(x.numpy())
    assert max_relative_error(out, ref.numpy()) < 1e-4


@pytest.mark.parametrize("width", [1.0, 0.5, 1.4])
def test_mobilenetv2_is_torchvisions_with_the_same_state_dict(width):
    """The own MobileNetV2 (no torchvision import when a model loads) has torchvision's
    keys and shapes, so its ImageNet weights load as they are, and computes the same
    features as torchvision's network with those weights."""
    from torchvision.models import mobilenet_v2

    ref = mobilenet_v2(weights=None, width_mult=width).eval()
    _randomise_batchnorm(ref, 1)
    ours = MobileNetV2Features(width).eval()
    want = ref.features.state_dict()
    assert [(k, v.shape) for k, v in ours.features.state_dict().items()] == \
        [(k, v.shape) for k, v in want.items()]
    ours.features.load_state_dict(want)
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        expected = ref.features(x).mean((2, 3))
        got = ours(x)
    assert got.shape == (2, ours.out_dim) == (2, 1792 if width > 1 else 1280)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert got.std() > 0
