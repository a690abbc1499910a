"""Every load path refuses a checkpoint that does not fit (issue #16.1).

``load_from``, ``--resume`` and ``tools/test.py`` go through
:class:`~dpt_mm.engine.DPTRunner`, which compares keys and shapes before
touching the model. A partial load is the explicit opt-in
``load_from_partial=True`` and lists what it did not load.
"""
import importlib.util
import logging
import os.path as osp
import sys
import uuid

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel
from torch.utils.data import Dataset

import dpt_mm  # noqa: F401
from dpt_mm.converters import CheckpointMismatchError
from dpt_mm.engine import DPTRunner, ResumeError
from mmseg.registry import MODELS
from toy_utils import make_toy_root, shrink_config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '../..'))


class ToyModel(BaseModel):

    def __init__(self, width: int = 1) -> None:
        super().__init__()
        self.linear = nn.Linear(2, width)
        self.head = nn.Linear(width, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.head(self.linear(torch.stack(inputs)))
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return out


class ToyDataset(Dataset):

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.full((2, ), float(index)))


def make_runner(work_dir, model=None, optimizer=None, **kwargs) -> DPTRunner:
    cfg = kwargs.pop('cfg', {})
    return DPTRunner(
        model=model or ToyModel(),
        work_dir=str(work_dir),
        experiment_name=f'strict_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='InfiniteSampler', shuffle=False),
            batch_size=2, num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(
            optimizer=optimizer or dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='ConstantLR', factor=1.0, by_epoch=False),
        default_hooks=dict(checkpoint=dict(
            type='AtomicCheckpointHook', by_epoch=False, interval=2)),
        default_scope='mmseg', cfg=cfg, **kwargs)


class ListHandler(logging.Handler):

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def weights(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model: nn.Module, before: dict) -> None:
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.fixture
def trained(tmp_path):
    """A complete training checkpoint of ToyModel (2 iterations)."""
    make_runner(tmp_path / 'source').train()
    return str(tmp_path / 'source' / 'iter_2.pth')


def edited(trained, tmp_path, edit) -> str:
    checkpoint = torch.load(trained, weights_only=False)
    edit(checkpoint)
    path = str(tmp_path / f'edited_{uuid.uuid4().hex[:6]}.pth')
    torch.save(checkpoint, path)
    return path


def test_load_from_refuses_missing_key_and_trains_nothing(trained, tmp_path):
    path = edited(trained, tmp_path,
                  lambda c: c['state_dict'].pop('head.bias'))
    runner = make_runner(tmp_path / 'run', load_from=path)
    with pytest.raises(CheckpointMismatchError) as info:
        runner.train()
    message = str(info.value)
    assert path in message and 'missing keys' in message
    assert 'head.bias' in message and '--partial-load' in message
    assert not osp.exists(tmp_path / 'run' / 'iter_2.pth')


def test_refused_load_leaves_the_model_untouched(trained, tmp_path):
    path = edited(trained, tmp_path, lambda c: c['state_dict'].update(
        extra=torch.zeros(1)))
    runner = make_runner(tmp_path / 'run')
    before = weights(runner.model)
    with pytest.raises(CheckpointMismatchError, match='unexpected keys'):
        runner.load_checkpoint(path)
    assert_unchanged(runner.model, before)


def test_partial_load_is_opt_in_and_lists_what_was_not_loaded(
        trained, tmp_path):
    # A new head: another width for both layers that touch it.
    source = torch.load(trained, weights_only=False)['state_dict']
    model = ToyModel(width=3)
    path = edited(trained, tmp_path, lambda c: c['state_dict'].pop(
        'linear.bias'))
    runner = make_runner(tmp_path / 'run', model=model,
                         cfg=dict(load_from_partial=True))
    before = weights(runner.model)
    handler = ListHandler()
    runner.logger.addHandler(handler)
    runner.load_checkpoint(path)
    log = '\n'.join(handler.messages)
    assert 'missing in the checkpoint, kept as initialised: linear.bias' \
        in log
    assert 'shape differs, kept as initialised: linear.weight' in log
    assert 'head.weight: checkpoint (1, 1) vs model (1, 3)' in log
    # Only head.bias fits: it is loaded, the rest stays as initialised.
    state = runner.model.state_dict()
    assert torch.equal(state['head.bias'], source['head.bias'])
    for key in ('linear.weight', 'linear.bias', 'head.weight'):
        assert torch.equal(state[key], before[key])


def test_test_time_augmentation_wrapper_loads_strictly(trained, tmp_path):
    # tools/test.py --tta wraps the model: keys gain a "module." prefix.
    tta = MODELS.build(dict(type='SegTTAModel', module=ToyModel()))
    runner = make_runner(tmp_path / 'run', model=tta)
    runner.load_checkpoint(trained)
    source = torch.load(trained, weights_only=False)['state_dict']
    for key, value in tta.module.state_dict().items():
        assert torch.equal(value, source[key]), key
    path = edited(trained, tmp_path,
                  lambda c: c['state_dict'].pop('head.bias'))
    with pytest.raises(CheckpointMismatchError, match='head.bias'):
        runner.load_checkpoint(path)


def test_partial_load_of_nothing_is_refused(tmp_path):
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=dict(conv=torch.zeros(3))), path)
    runner = make_runner(tmp_path / 'run', cfg=dict(load_from_partial=True))
    with pytest.raises(CheckpointMismatchError, match='partial load'):
        runner.load_checkpoint(path)


def test_resume_refuses_extra_key(trained, tmp_path):
    path = edited(trained, tmp_path, lambda c: c['state_dict'].update(
        extra=torch.zeros(1)))
    # load_from_partial never applies to a resume.
    runner = make_runner(tmp_path / 'run', load_from=path, resume=True,
                         cfg=dict(load_from_partial=True))
    with pytest.raises(CheckpointMismatchError) as info:
        runner.train()
    assert 'extra' in str(info.value) and path in str(info.value)


def test_resume_with_other_architecture_names_the_shapes(trained, tmp_path):
    runner = make_runner(tmp_path / 'run', model=ToyModel(width=3),
                         load_from=trained, resume=True)
    with pytest.raises(CheckpointMismatchError) as info:
        runner.train()
    assert 'linear.weight: checkpoint (1, 2) vs model (3, 2)' in str(
        info.value)


def test_resume_without_message_hub_names_the_part(trained, tmp_path):
    path = edited(trained, tmp_path, lambda c: c.pop('message_hub'))
    runner = make_runner(tmp_path / 'run', load_from=path, resume=True)
    with pytest.raises(ResumeError) as info:
        runner.train()
    assert path in str(info.value) and 'lacks message_hub' in str(info.value)


def test_resume_with_another_optimizer_is_a_clear_error(trained, tmp_path):
    # Same model, but the optimizer state of another run (two param groups).
    def two_groups(checkpoint):
        groups = checkpoint['optimizer']['param_groups']
        groups.append(dict(groups[0], params=[99]))
    path = edited(trained, tmp_path, two_groups)
    runner = make_runner(tmp_path / 'run', load_from=path, resume=True)
    with pytest.raises(ResumeError, match='optimizer or scheduler state'):
        runner.train()


def load_tool(name: str):
    path = osp.join(ROOT, 'tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'dpt_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_test_tool_refuses_a_segmentation_checkpoint_on_a_depth_config(
        tmp_path_factory, tmp_path, monkeypatch):
    toy_root = make_toy_root(tmp_path_factory)
    configs = {}
    for name in ('dpt_toy_depth', 'dpt_toy_seg'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', 'toy', f'{name}.py'))
        configs[name] = shrink_config(cfg, toy_root, str(tmp_path / name))
    seg_model = MODELS.build(configs['dpt_toy_seg'].model)
    checkpoint = str(tmp_path / 'seg.pth')
    torch.save(dict(meta=dict(), state_dict=seg_model.state_dict()),
               checkpoint)
    config = str(tmp_path / 'depth.py')
    configs['dpt_toy_depth'].dump(config)
    metrics = str(tmp_path / 'metrics.json')
    monkeypatch.setattr(sys, 'argv', [
        'test.py', config, checkpoint, '--work-dir', str(tmp_path / 'test'),
        '--metrics-json', metrics
    ])
    with pytest.raises(CheckpointMismatchError) as info:
        load_tool('test').main()
    message = str(info.value)
    assert checkpoint in message
    assert 'missing keys' in message and 'unexpected keys' in message
    assert 'decode_head.conv_seg.weight' in message  # the seg head's
    assert not osp.exists(metrics)


def test_train_tool_partial_load_fine_tunes_a_depth_model_from_seg_weights(
        tmp_path_factory, tmp_path, monkeypatch):
    toy_root = make_toy_root(tmp_path_factory)
    configs = {}
    for name in ('dpt_toy_depth', 'dpt_toy_seg'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', 'toy', f'{name}.py'))
        configs[name] = shrink_config(cfg, toy_root, str(tmp_path / name))
    seg_state = MODELS.build(configs['dpt_toy_seg'].model).state_dict()
    checkpoint = str(tmp_path / 'seg.pth')
    torch.save(dict(meta=dict(), state_dict=seg_state), checkpoint)
    config = str(tmp_path / 'depth.py')
    configs['dpt_toy_depth'].dump(config)
    work_dir = tmp_path / 'work'
    argv = ['train.py', config, '--work-dir', str(work_dir), '--cfg-options',
            f'load_from={checkpoint}']
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(CheckpointMismatchError, match='--partial-load'):
        load_tool('train').main()
    assert not osp.exists(work_dir / 'iter_2.pth')

    monkeypatch.setattr(sys, 'argv', argv + ['--partial-load'])
    load_tool('train').main()
    trained = torch.load(str(work_dir / 'iter_2.pth'), weights_only=False)
    assert trained['meta']['iter'] == 2
