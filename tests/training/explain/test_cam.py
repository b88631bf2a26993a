"""Grad-CAM family against an independent reference of the bolt-screening study's eq. 2-4."""
from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn

from training.explain.cam import (
    gradcam,
    gradcam_and_logits,
    guided_backprop,
    guided_gradcam,
    layer_names,
    saliency,
    upsample,
)


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)
    m = torchvision.models.resnet18(weights=None, num_classes=2)
    # Random BatchNorm statistics so eval mode differs from train mode (a real check).
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    return m


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.randn(3, 3, 48, 48, generator=torch.Generator().manual_seed(1))


def reference_resnet_cam(m: nn.Module, x: torch.Tensor, layer: str, cls: int, target: str) -> torch.Tensor:
    """Eq. 2-4 written out on a plain split forward, one image at a time; returns the map
    before its ReLU (sum_k a_k A^k)."""
    was = m.training
    m.eval()
    stages = ["layer1", "layer2", "layer3", "layer4"]
    try:
        with torch.no_grad():
            h = m.maxpool(m.relu(m.bn1(m.conv1(x[None]))))
            for s in stages[:stages.index(layer) + 1]:
                h = getattr(m, s)(h)
        A = h.detach().requires_grad_(True)
        h = A
        for s in stages[stages.index(layer) + 1:]:
            h = getattr(m, s)(h)
        logits = m.fc(torch.flatten(m.avgpool(h), 1))[0]
    finally:
        m.train(was)
    y = logits.softmax(0)[cls] if target == "softmax" else logits[cls]
    (dy_dA,) = torch.autograd.grad(y, A)
    Z = A.shape[2] * A.shape[3]
    alpha = dy_dA[0].sum(dim=(1, 2)) / Z  # a_k = 1/Z sum_ij dy^c/dA^k_ij
    return (alpha[:, None, None] * A[0].detach()).sum(0)  # L = ReLU(this)


@pytest.mark.parametrize("target", ["logit", "softmax"])
@pytest.mark.parametrize("layer", ["layer4", "layer2"])
def test_gradcam_equals_reference(resnet, batch, target, layer):
    for cls in (0, 1):
        raw = torch.stack([reference_resnet_cam(resnet, x, layer, cls, target) for x in batch])
        assert raw.abs().max() > 0 and (raw > 0).any()
        tol = {"rtol": 1e-4, "atol": 1e-5 * float(raw.abs().max())}
        torch.testing.assert_close(gradcam(resnet, batch, layer, cls, target=target, relu=False), raw, **tol)
        torch.testing.assert_close(gradcam(resnet, batch, layer, cls, target=target), torch.relu(raw), **tol)


def test_sequential_reference_and_layer_object():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
    x = torch.randn(2, 3, 10, 12)
    A = net[:4](x).detach().requires_grad_(True)
    y = net[4:](A)
    (g,) = torch.autograd.grad(y[:, 2].sum(), A)
    ref = torch.relu((g.mean(dim=(2, 3), keepdim=True) * A.detach()).sum(1))
    torch.testing.assert_close(gradcam(net, x, "3", 2), ref)
    torch.testing.assert_close(gradcam(net, x, net[3], 2), ref)  # a module instead of a name
    assert layer_names(net) == ["0", "2"]


def test_batched_equals_per_sample_and_class_choices(resnet, batch):
    per = torch.cat([gradcam(resnet, b[None], "layer3", [c]) for b, c in zip(batch, [0, 1, 1])])
    torch.testing.assert_close(gradcam(resnet, batch, "layer3", [0, 1, 1]), per, rtol=1e-4, atol=1e-7)
    cams, logits, idx = gradcam_and_logits(resnet, batch, "layer4", None)
    assert idx.tolist() == logits.argmax(1).tolist()  # None explains the predicted class
    torch.testing.assert_close(cams, gradcam(resnet, batch, "layer4", idx.tolist()))


def test_relu_and_upsample(resnet, batch):
    raw = gradcam(resnet, batch, "layer2", [0, 1, 0], relu=False)
    assert (raw < 0).any() and (raw > 0).any()
    torch.testing.assert_close(gradcam(resnet, batch, "layer2", [0, 1, 0]), raw.clamp_min(0))
    up = gradcam(resnet, batch, "layer2", [0, 1, 0], size=(48, 48))
    assert up.shape == (3, 48, 48)
    torch.testing.assert_close(up, upsample(raw.clamp_min(0), (48, 48)))
    manual = nn.functional.interpolate(raw.clamp_min(0)[:, None], size=(48, 48), mode="bilinear",
                                       align_corners=False)[:, 0]
    torch.testing.assert_close(up, manual)


def _hooks(m: nn.Module) -> int:
    return sum(len(x._forward_hooks) + len(x._forward_pre_hooks) + len(x._backward_hooks)
               + len(getattr(x, "_backward_pre_hooks", {})) for x in m.modules())


def test_state_restored_even_on_errors(batch):
    torch.manual_seed(0)
    m = torchvision.models.resnet18(weights=None, num_classes=2)
    m.train()
    m.layer2.eval()  # a mixed state must come back exactly
    for p in m.layer1.parameters():
        p.requires_grad_(False)
    modes = {n: mod.training for n, mod in m.named_modules()}
    flags = {n: p.requires_grad for n, p in m.named_parameters()}
    state = {k: v.clone() for k, v in m.state_dict().items()}
    calls = [lambda: gradcam(m, batch, "layer4", 1),
             lambda: gradcam(m, batch, "layer4", 1, target="softmax"),
             lambda: guided_backprop(m, batch, 0),
             lambda: guided_gradcam(m, batch, "layer3")]
    failing = [lambda: gradcam(m, batch, "layer4", 5),  # class out of range
               lambda: gradcam(m, batch, "fc", 1),  # not a conv map
               lambda: gradcam(m, batch, "nope", 1),
               lambda: gradcam(m, batch, "layer4", [0, 1]),  # wrong count
               lambda: guided_backprop(m, batch, 7)]
    for c in calls:
        c()
    for c in failing:
        with pytest.raises(ValueError):
            c()
    assert {n: mod.training for n, mod in m.named_modules()} == modes
    assert {n: p.requires_grad for n, p in m.named_parameters()} == flags
    assert _hooks(m) == 0
    assert all(p.grad is None for p in m.parameters())
    # BatchNorm running stats untouched: the passes ran in eval mode
    for k, v in m.state_dict().items():
        torch.testing.assert_close(v, state[k])


def test_hooks_removed_when_forward_raises():
    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), Boom())
    net.train()
    for fn in (lambda: gradcam(net, torch.randn(1, 3, 8, 8), "0", 0),
               lambda: guided_backprop(net, torch.randn(1, 3, 8, 8), 0)):
        with pytest.raises(RuntimeError, match="boom"):
            fn()
    assert _hooks(net) == 0 and net.training and all(m.training for m in net.modules())


class _Count(torch.autograd.Function):
    forwards = backwards = 0

    @staticmethod
    def forward(ctx, x):
        _Count.forwards += 1
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        _Count.backwards += 1
        return g


class CountLayer(nn.Module):
    def forward(self, x):
        return _Count.apply(x)


def test_one_forward_one_backward_and_frozen_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), CountLayer(), nn.Conv2d(4, 4, 3),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    for p in net.parameters():
        p.requires_grad_(False)  # frozen everywhere: the graph must still reach the layer
    _Count.forwards = _Count.backwards = 0
    cam = gradcam(net, torch.randn(5, 3, 12, 12), "1", 1)
    assert cam.shape == (5, 10, 10)
    assert (_Count.forwards, _Count.backwards) == (1, 1)
    assert not any(p.requires_grad for p in net.parameters())


def test_inplace_ops_after_the_layer_do_not_corrupt_it(resnet, batch):
    # layer4.1.bn2's output is modified in place by `out += identity` and ReLU(inplace=True).
    clean = copy.deepcopy(resnet)
    for mod in clean.modules():
        if isinstance(mod, nn.ReLU):
            mod.inplace = False
    for layer in ("layer4.1.bn2", "layer3.0.conv2"):
        torch.testing.assert_close(gradcam(resnet, batch, layer, 1), gradcam(clean, batch, layer, 1))
    with torch.inference_mode():
        x = batch.clone()  # an inference tensor must still work
    torch.testing.assert_close(gradcam(resnet, x, "layer4", 1), gradcam(resnet, batch, "layer4", 1))


def test_guided_backprop_matches_hand_derivation():
    torch.manual_seed(2)
    l1, l2 = nn.Linear(12, 7), nn.Linear(7, 3)
    net = nn.Sequential(nn.Flatten(), l1, nn.ReLU(), l2)
    x = torch.randn(4, 3, 2, 2)
    c = 2
    z = l1(x.flatten(1))
    # guided: (z > 0) * clamp(W2[c], 0) back through W1 (negative gradients cut at the ReLU)
    g_hidden = (z > 0).float() * l2.weight[c].clamp_min(0)[None]
    ref = (g_hidden @ l1.weight).reshape(x.shape)
    torch.testing.assert_close(guided_backprop(net, x, c), ref.detach())
    plain = ((z > 0).float() * l2.weight[c][None]) @ l1.weight
    assert not torch.allclose(ref, plain.reshape(x.shape))  # the guidance did something


def test_guided_gradcam_rules(resnet, batch):
    ggc = guided_gradcam(resnet, batch, "layer2", [0, 1, 0])
    assert ggc.shape == batch.shape
    cam = gradcam(resnet, batch, "layer2", [0, 1, 0], size=(48, 48))
    gb = guided_backprop(resnet, batch, [0, 1, 0])
    torch.testing.assert_close(ggc, gb * cam[:, None])
    assert (cam >= 0).all()
    zero = (cam == 0)[:, None].expand_as(ggc)
    assert zero.any() and (ggc[zero] == 0).all()  # no Grad-CAM evidence -> nothing shown
    s = saliency(ggc)
    assert s.shape == (3, 48, 48) and (s >= 0).all()


def test_layer_names_for_registry_backbones():
    assert layer_names(torchvision.models.resnet18(weights=None)) == \
        ["conv1", "layer1", "layer2", "layer3", "layer4"]
    names = layer_names(torchvision.models.mobilenet_v3_small(weights=None))
    assert names[0] == "features.0" and names[-1] == "features.12"
    with pytest.raises(ValueError, match="layer4"):
        gradcam(torchvision.models.resnet18(weights=None), torch.randn(1, 3, 32, 32), "layer9")
