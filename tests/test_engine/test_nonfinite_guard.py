"""NonFiniteGuard optim wrappers keep NaN/inf updates out of the weights."""
import logging
import uuid

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim.optimizer import amp_optimizer_wrapper
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement
from mmseg.registry import OPTIM_WRAPPERS
from torch.utils.data import Dataset

import dpt_mm  # noqa: F401
from dpt_mm.engine.hooks import CURRENT_SAMPLES_KEY


class RegressionModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs)).squeeze(1)
        if mode == 'loss':
            target = torch.stack([s.target for s in data_samples])
            return dict(loss=(out - target).pow(2).mean())
        return out


class OneNaNTargetDataset(Dataset):
    """Four samples; sample_3's target is NaN (second batch of two)."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        target = float('nan') if index == 3 else float(index)
        sample = BaseDataElement(
            metainfo=dict(img_path=f'data/sample_{index}.png'),
            target=torch.tensor(target))
        return dict(
            inputs=torch.tensor([float(index), 1.]), data_samples=sample)


class WeightRecorder(Hook):

    def __init__(self) -> None:
        self.weights = []

    def before_train(self, runner) -> None:
        self.weights.append(runner.model.linear.weight.detach().clone())

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.weights.append(runner.model.linear.weight.detach().clone())


class ListHandler(logging.Handler):

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_nan_sample_skips_step_and_is_named(tmp_path):
    recorder = WeightRecorder()
    runner = Runner(
        model=RegressionModel(),
        work_dir=str(tmp_path),
        experiment_name=f'nonfinite_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            dataset=OneNaNTargetDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(
            type='NonFiniteGuardOptimWrapper',
            optimizer=dict(type='AdamW', lr=0.1, weight_decay=0.1),
            clip_grad=dict(max_norm=1.0)),
        custom_hooks=[dict(type='SampleTrackerHook'), recorder],
        default_hooks=dict(checkpoint=None),
        default_scope='mmseg')
    handler = ListHandler()
    runner.logger.addHandler(handler)
    runner.train()

    before, after_good, after_nan = recorder.weights
    assert not torch.equal(before, after_good)  # the finite batch trained
    assert torch.equal(after_good, after_nan)  # weight decay not applied
    assert torch.isfinite(after_nan).all()
    warnings = [m for m in handler.messages if 'NonFiniteGuard' in m]
    assert len(warnings) == 1
    assert 'non-finite loss nan at iteration 2' in warnings[0]
    assert 'data/sample_3.png' in warnings[0]
    assert runner.optim_wrapper.consecutive_skips == 1


@pytest.fixture
def samples():
    """A fresh current message hub that names the batch's files."""
    hub = MessageHub.get_instance(f'nonfinite_{uuid.uuid4().hex[:8]}')
    hub.update_info(CURRENT_SAMPLES_KEY, ['bad.png'], resumed=False)
    return hub


def build_wrapper(model: nn.Module, **kwargs):
    cfg = dict(type='NonFiniteGuardOptimWrapper', **kwargs)
    return OPTIM_WRAPPERS.build(
        cfg,
        default_args=dict(
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))


def grads_cleared(model: nn.Module) -> bool:
    return all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_raise_mode_names_value_and_files(samples):
    model = nn.Linear(2, 1)
    wrapper = build_wrapper(model, on_nonfinite='raise')
    weight = model.weight.detach().clone()
    loss = model(torch.ones(1, 2)).sum() * float('inf')
    with pytest.raises(RuntimeError, match=r"loss -?inf .*bad\.png"):
        wrapper.update_params(loss)
    assert torch.equal(model.weight, weight)
    assert grads_cleared(model)


def test_nonfinite_gradient_from_finite_loss_is_skipped(samples):
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.zero_()
    # Named groups, as ViTLayerDecayOptimizerConstructor builds them.
    optimizer = torch.optim.SGD([
        dict(params=[model.weight], param_names=['backbone.w']),
        dict(params=[model.bias], param_names=['decode_head.b']),
    ], lr=0.1)
    wrapper = OPTIM_WRAPPERS.build(
        dict(type='NonFiniteGuardOptimWrapper', on_nonfinite='raise'),
        default_args=dict(optimizer=optimizer))
    # d sqrt(w) / dw at w=0 is inf while the loss itself is 0.
    loss = torch.sqrt(model.weight).sum() + model.bias.sum()
    with pytest.raises(RuntimeError,
                       match=r'gradients in 1 parameter tensors \(backbone'):
        wrapper.update_params(loss)
    assert not model.weight.any()


def test_too_many_consecutive_skips_raise(samples):
    model = nn.Linear(2, 1)
    wrapper = build_wrapper(model, max_consecutive_skips=1)
    x = torch.ones(1, 2)
    wrapper.update_params(model(x).sum() * float('nan'))  # warns
    wrapper.update_params(model(x).sum())  # a good step resets the count
    assert wrapper.consecutive_skips == 0
    wrapper.update_params(model(x).sum() * float('nan'))
    with pytest.raises(RuntimeError, match='max_consecutive_skips=1'):
        wrapper.update_params(model(x).sum() * float('nan'))


def test_amp_variant_skips_nonfinite_loss(samples, monkeypatch):
    # AmpOptimWrapper refuses to build without an accelerator; on CPU the
    # GradScaler disables itself, which leaves the loss check to test.
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    model = nn.Linear(2, 1)
    wrapper = OPTIM_WRAPPERS.build(
        dict(type='NonFiniteGuardAmpOptimWrapper'),
        default_args=dict(
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    weight = model.weight.detach().clone()
    wrapper.update_params(model(torch.ones(1, 2)).sum() * float('nan'))
    assert torch.equal(model.weight, weight)
    assert wrapper.consecutive_skips == 1
    wrapper.update_params(model(torch.ones(1, 2)).sum())
    assert not torch.equal(model.weight, weight)
