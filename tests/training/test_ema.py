"""The moving average of the weights (training.ema): the average itself, its swap in and out of
a model, and a real run that validates and delivers it while training the raw weights unchanged."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from toykit import make_toy_project

from training import loop
from training.backbones import get_backbone
from training.config import TrainConfig
from training.ema import WeightAverage, decay_for
from training.errors import TrainingError
from training.snapshot import load_snapshot, stratified_split


def _expected(history: list[dict[str, torch.Tensor]], decay: float) -> dict[str, torch.Tensor]:
    """The EMA of a list of states, written out: the first copied, then the decay's warm-up."""
    avg = {k: v.clone() for k, v in history[0].items()}
    for n, state in enumerate(history[1:], start=1):
        d = min(decay, (1 + n) / (10 + n))
        for k, v in state.items():
            avg[k] = d * avg[k] + (1 - d) * v if v.is_floating_point() else v.clone()
    return avg


def test_the_average_follows_each_step_buffers_included_and_swaps_in_and_out():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    average = WeightAverage(model, decay=0.8)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    average.follow(model, opt)
    seen = []
    for _ in range(6):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    want = _expected(seen, 0.8)
    got = average.averaged.module.state_dict()
    for k, v in want.items():
        assert torch.allclose(got[k], v, atol=1e-6), k
    assert int(got["1.num_batches_tracked"]) == 6  # integer buffers follow the model
    raw = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match="inside"), average.applied(model):
        assert torch.allclose(model[0].weight, want["0.weight"], atol=1e-6)
        assert torch.allclose(model[1].running_mean, want["1.running_mean"], atol=1e-6)
        raise RuntimeError("inside")
    for k, v in raw.items():  # the raw weights are back, also after an error inside
        assert torch.equal(model.state_dict()[k], v), k


def test_decay_averages_about_the_asked_epochs_never_under_two_steps():
    assert decay_for(1.0, 20) == pytest.approx(0.95)
    assert decay_for(2.0, 20) == pytest.approx(1 - 1 / 40)
    assert decay_for(1.0, 1) == 0.5
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(nn.Linear(2, 2), 1.0)
    with pytest.raises(TrainingError, match="EMA window"):
        TrainConfig(ema_epochs=-1).validate()


def test_a_run_validates_and_delivers_the_average_and_trains_the_same_raw_weights(tmp_path, monkeypatch):
    """Two seeded runs, with and without the average: the same training losses (the average never
    touches the weights that train); the second delivers the EMA of its steps' weights."""
    path = make_toy_project(tmp_path / "toy.okng", n_ok=6, n_ng=6, size=(32, 32))
    snap = load_snapshot(path, (32, 32))
    tr, va = stratified_split(snap.part_targets(), 0.25, 0)
    spec = get_backbone("mobilenet_v3_small")
    steps: list[dict[str, torch.Tensor]] = []
    real = loop.make_optimizer

    def recording(config, params):  # type: ignore[no-untyped-def]
        opt = real(config, params)
        model = holder[0]
        opt.register_step_post_hook(lambda *_: steps.append(
            {k: v.detach().clone() for k, v in model.named_parameters()}))
        return opt
    holder: list[nn.Module] = []

    def init() -> nn.Module:
        holder[:] = [spec.build(2)]
        return holder[0]
    monkeypatch.setattr(loop, "make_optimizer", recording)
    runs = {}
    for ema in (0.0, 1.0):
        steps.clear()
        cfg = TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=3, batch_size=4, input_size=32,
                          optimizer="adamw", lr=2e-3, patience=0, ema_epochs=ema, seed=0)
        model, _, history, _, _ = loop.fit_split(snap, tr, va, cfg, init, None, None, keep_last=True)
        runs[ema] = (model, [h.loss for h in history], list(steps))
    assert runs[0.0][1] == runs[1.0][1]
    model, _, seen = runs[1.0]
    n_steps = len(seen) // 3
    want = _expected(seen, decay_for(1.0, n_steps))
    params = dict(model.named_parameters())
    assert all(torch.allclose(params[k], v, atol=1e-5) for k, v in want.items())
    # ... which is not the last step's weights (the average did something)
    assert not all(torch.allclose(params[k], v, atol=1e-5) for k, v in seen[-1].items())
    plain = dict(runs[0.0][0].named_parameters())
    assert all(torch.allclose(plain[k], v) for k, v in seen[-1].items())
