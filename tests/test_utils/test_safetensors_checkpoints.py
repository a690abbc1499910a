"""Safetensors checkpoints on every load path.

``load_checkpoint_file`` recognises safetensors by content, so
``init_model``/``load_weights``, ``tools/test.py`` (Runner ``load_from``),
``init_cfg=dict(type='Pretrained')`` and mmengine's ``load_checkpoint`` all
read them; the converters write them when the output ends in
``.safetensors``.
"""
import pytest
import torch
from mmengine.runner import load_checkpoint
from safetensors.torch import save_file

import dpt_mm  # noqa: F401  (registers the safe loader)
from dpt_mm.utils import load_checkpoint_file, save_checkpoint_file


def _tensors(seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {'weight': torch.randn(3, 2, generator=gen),
            'bias': torch.randn(3, generator=gen)}


def test_checkpoint_round_trip_keeps_meta_and_groups(tmp_path):
    path = str(tmp_path / 'model.safetensors')
    meta = dict(dataset_meta=dict(classes=['a', 'b']),
                numerics={'backbone.ws_mode': 'var'})
    unused = {'dpt.layernorm.weight': torch.ones(4)}
    save_checkpoint_file(dict(state_dict=_tensors(), meta=meta,
                              hf_unused=unused), path)
    loaded = load_checkpoint_file(path)
    assert set(loaded) == {'state_dict', 'meta', 'hf_unused'}
    assert loaded['meta'] == meta
    for key, value in _tensors().items():
        assert torch.equal(loaded['state_dict'][key], value)
    assert torch.equal(loaded['hf_unused']['dpt.layernorm.weight'],
                       torch.ones(4))


def test_plain_safetensors_is_a_state_dict_whatever_its_name(tmp_path):
    # Another tool's file, even named .pth, is read as what it is.
    path = str(tmp_path / 'weights.pth')
    save_file(_tensors(), path)
    loaded = load_checkpoint_file(path)
    assert set(loaded) == {'weight', 'bias'}


def test_mmengine_load_paths_read_safetensors(tmp_path):
    """load_from / Pretrained init go through mmengine's CheckpointLoader,
    which dpt_mm routes to load_checkpoint_file."""
    path = str(tmp_path / 'model.safetensors')
    save_checkpoint_file(dict(state_dict=_tensors(1)), path)
    model = torch.nn.Linear(2, 3)
    load_checkpoint(model, path, map_location='cpu', strict=True)
    assert torch.equal(model.weight, _tensors(1)['weight'])


def test_torch_files_still_load_and_bad_values_are_named(tmp_path):
    path = str(tmp_path / 'model.pth')
    save_checkpoint_file(dict(state_dict=_tensors(), meta=dict(a=1)), path)
    assert load_checkpoint_file(path)['meta'] == dict(a=1)
    with pytest.raises(ValueError, match="checkpoint\\['optimizer'\\]"):
        save_checkpoint_file(dict(state_dict=_tensors(),
                                  optimizer=dict(lr=0.1)),
                             str(tmp_path / 'x.safetensors'))


def test_init_model_reads_safetensors(tmp_path):
    from dpt_mm.apis import init_model
    from test_inference import write_tiny_model
    cfg, ckpt = write_tiny_model(str(tmp_path), 'depth')
    loaded = torch.load(ckpt, map_location='cpu', weights_only=True)
    path = str(tmp_path / 'model.safetensors')
    save_checkpoint_file(dict(state_dict=loaded['state_dict'],
                              meta=loaded.get('meta') or {}), path)
    model = init_model(cfg, path)
    for key, value in loaded['state_dict'].items():
        assert torch.equal(model.state_dict()[key], value)
