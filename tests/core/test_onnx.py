"""ONNX Runtime gives the same features as PyTorch; exported files are reused safely."""
import numpy as np
import pytest
import torch

from app.core.backbones import Conv4, Identity, MobileNetV2Features
from app.core.learners import ProtoNet
from app.core.model import OMNIGLOT_INPUT, FewShotModel, InputSpec, backbone_id
from app.core.onnx_backend import EXPORT_REVISION, OnnxBackbone, OnnxUnavailable, max_relative_error

pytest.importorskip("onnxruntime")


def _randomise_batchnorm(module: torch.nn.Module, seed: int) -> None:
    """Random-init networks have identity batch norm; real ones do not. Give every BN
    layer non-trivial statistics and affine weights so the comparison means something."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def _mobilenet(seed=0):
    torch.manual_seed(seed)
    bb = MobileNetV2Features()
    _randomise_batchnorm(bb, seed)
    return FewShotModel(bb, {"protonet": ProtoNet()}, InputSpec(size=(96, 96))).eval()


def _conv4(seed=0):
    torch.manual_seed(seed)
    bb = Conv4(3, hidden=16, out_channels=16)
    _randomise_batchnorm(bb, seed)
    return FewShotModel(bb, {"protonet": ProtoNet()},
                        InputSpec(size=(32, 32), resize="stretch", crop_fraction=1.0)).eval()


@pytest.mark.parametrize("make,isolate", [(_mobilenet, False), (_conv4, True)],
                         ids=["mobilenetv2", "conv4-exported-in-child-process"])
def test_onnx_matches_pytorch(make, isolate, tmp_path):
    model = make()
    ort_bb = OnnxBackbone.for_model(model, tmp_path, threads=1, run_batch=2, isolate=isolate)
    for batch in (1, 5):  # the batch dimension is dynamic; 5 runs as 2 + 2 + 1
        x = torch.randn(batch, *model.input_spec.shape)
        with torch.no_grad():
            ref = model.features(x).numpy()
        out = ort_bb(x.numpy())
        assert out.shape == ref.shape and out.dtype == np.float32
        assert np.abs(ref).max() > 1e-3  # a meaningful, non-vanishing output
        assert max_relative_error(out, ref) < 1e-4


def test_export_is_reused_and_keyed_by_weights(tmp_path):
    model = _conv4(0)
    first = OnnxBackbone.for_model(model, tmp_path, threads=1, isolate=False)
    assert first.path.name == f"{backbone_id(model)}-r{EXPORT_REVISION}.onnx"
    stamp = first.path.stat().st_mtime_ns
    again = OnnxBackbone.for_model(model, tmp_path, threads=1, isolate=False)
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp
    other = OnnxBackbone.for_model(_conv4(1), tmp_path, threads=1, isolate=False)  # other weights
    assert other.path != first.path
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert not np.allclose(first(x), other(x))
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporaries


def test_concurrent_runs_give_the_same_features(tmp_path):
    model = _conv4(3)
    bb = OnnxBackbone.for_model(model, tmp_path, threads=1, run_batch=2, isolate=False)
    x = np.random.default_rng(3).standard_normal((7, 3, 32, 32)).astype(np.float32)
    one = bb(x)
    bb.streams = 3
    np.testing.assert_array_equal(bb(x), one)


def test_another_cache_folder_gets_the_same_export(tmp_path):
    model = _conv4(2)
    a = OnnxBackbone.for_model(model, tmp_path / "a", threads=1, isolate=False)
    b = OnnxBackbone.for_model(model, tmp_path / "b", threads=1, isolate=False)
    assert b.path.parent == tmp_path / "b" and b.path.name == a.path.name
    assert b.path.read_bytes() == a.path.read_bytes()
    assert b.check_against_torch(model) < 1e-4


def test_damaged_export_is_redone(tmp_path):
    model = _conv4(0)
    path = tmp_path / f"{backbone_id(model)}-r{EXPORT_REVISION}.onnx"
    path.write_bytes(b"half a file")
    bb = OnnxBackbone.for_model(model, tmp_path, threads=1, isolate=False)
    assert bb.check_against_torch(model) < 1e-4


def test_backbones_onnx_cannot_run_say_why(tmp_path):
    ident = FewShotModel(Identity((1, 28, 28)), {"protonet": ProtoNet()}, OMNIGLOT_INPUT)
    with pytest.raises(OnnxUnavailable, match="identity"):
        OnnxBackbone.for_model(ident, tmp_path)
    batch_stats = FewShotModel(Conv4(1, 8, 8, track_running_stats=False),
                               {"protonet": ProtoNet()}, OMNIGLOT_INPUT)
    with pytest.raises(OnnxUnavailable, match="batch"):
        OnnxBackbone.for_model(batch_stats, tmp_path)
    assert not list(tmp_path.iterdir())
