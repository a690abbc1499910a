"""A config that cannot work fails when the model is built, not at forward.

Every error must name the component and the key: unknown keys, values of
the wrong type, a head or neck whose channels do not fit what feeds it, a
neck with another number of levels than the backbone has hooks, an unknown
component type (through ``tools/train.py``), a config path or a data folder
that does not exist.
"""
import copy
import glob
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmseg.registry import MODELS

from dpt_mm.apis import init_model
from dpt_mm.datasets import check_data_paths
from dpt_mm.models import ConfigError, check_model_config

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
TRAIN = osp.join(REPO, 'tools', 'train.py')
TOY_DEPTH = osp.join(REPO, 'configs', 'toy', 'dpt_toy_depth.py')

VIT = dict(type='DPTViT', img_size=32, patch_size=16, embed_dims=16,
           num_layers=4, num_heads=2, out_indices=(0, 1, 2, 3))
HYBRID = dict(type='DPTViTHybrid', img_size=32, patch_size=16, embed_dims=16,
              num_layers=2, num_heads=2, out_indices=(0, 1), stem_channels=8,
              stem_depths=(1, 1, 1), stem_widths=(16, 32, 64), norm_groups=4)
NECK = dict(type='DPTNeck', in_channels=16, reassemble_channels=(8, 8, 16, 16),
            channels=8)
HYBRID_NECK = dict(NECK, in_channels=(16, 32, 16, 16),
                   reassemble_channels=(16, 32, 16, 16),
                   resample_factors=(1, 1, 1, 0.5), passthrough_indices=(0, 1))
DEPTH_HEAD = dict(type='DPTDepthHead', in_channels=8, channels=4)
SEG_HEAD = dict(type='DPTSegHead', in_channels=8, channels=8, num_classes=3,
                norm_cfg=dict(type='BN'))
AUX_HEAD = dict(type='FCNHead', in_channels=8, channels=8, in_index=1,
                num_convs=1, concat_input=False, num_classes=3,
                norm_cfg=dict(type='BN'))


def depth_model(**parts) -> dict:
    cfg = dict(type='DPTDepthEstimator',
               data_preprocessor=dict(type='SegDataPreProcessor'),
               backbone=VIT, neck=NECK, decode_head=DEPTH_HEAD)
    cfg.update(parts)
    return copy.deepcopy(cfg)


def seg_model(**parts) -> dict:
    cfg = dict(type='EncoderDecoder',
               data_preprocessor=dict(type='SegDataPreProcessor'),
               backbone=VIT, neck=NECK, decode_head=SEG_HEAD,
               auxiliary_head=AUX_HEAD)
    cfg.update(parts)
    return copy.deepcopy(cfg)


def build_error(cfg: dict) -> str:
    """Build (our segmentors check in their constructor); the message."""
    with pytest.raises(ConfigError) as err:
        MODELS.build(cfg)
    return str(err.value)


def check_error(cfg: dict) -> str:
    """check_model_config alone (mmseg's EncoderDecoder does not call it)."""
    with pytest.raises(ConfigError) as err:
        check_model_config(cfg)
    return str(err.value)


# --------------------------------------------------------------------------
# Unknown keys


def test_unknown_key_python_names_class_and_key() -> None:
    # What mmengine 0.10.7 gives on its own (Python's message, not wrapped).
    with pytest.raises(TypeError, match=r"DPTNeck\.__init__\(\) got an "
                       r"unexpected keyword argument 'foo'"):
        MODELS.build(dict(NECK, foo=1))


def test_unknown_key_names_path_component_key_and_suggestion() -> None:
    message = build_error(depth_model(neck=dict(NECK, reasemble_channels=1)))
    assert ("neck (DPTNeck): unknown key 'reasemble_channels' (did you mean "
            'reassemble_channels?)') in message
    # Python would blame DPTViT (**kwargs); the check names the subclass.
    message = build_error(depth_model(backbone=dict(HYBRID, foo=1),
                                      neck=HYBRID_NECK))
    assert "backbone (DPTViTHybrid): unknown key 'foo'" in message
    # Python would blame BaseDecodeHead; keys of losses are checked too.
    message = check_error(seg_model(
        auxiliary_head=dict(AUX_HEAD, num_conv=1),
        decode_head=dict(SEG_HEAD, loss_decode=dict(
            type='CrossEntropyLoss', loss_weigth=1.0))))
    assert "auxiliary_head (FCNHead): unknown key 'num_conv'" in message
    assert ("decode_head.loss_decode (CrossEntropyLoss): unknown key "
            "'loss_weigth'") in message


# --------------------------------------------------------------------------
# Wrong types


@pytest.mark.parametrize('cfg,expected', [
    (dict(VIT, embed_dims='16'), "DPTViT: embed_dims must be int, got str "
     "'16'"),
    (dict(VIT, out_indices=3), 'DPTViT: out_indices must be a sequence of '
     'int, got int 3'),
    (dict(HYBRID, stem_widths=64), 'DPTViTHybrid: stem_widths must be a '
     'sequence of int, got int 64'),
    (dict(NECK, reassemble_channels=16), 'DPTNeck: reassemble_channels must '
     'be a sequence of int, got int 16'),
    (dict(NECK, in_channels='16'), "DPTNeck: in_channels must be int or a "
     "sequence of int, got str '16'"),
])
def test_wrong_type_in_constructor_names_class_and_key(cfg, expected) -> None:
    with pytest.raises(TypeError) as err:
        MODELS.build(cfg)
    assert expected in str(err.value)


def test_wrong_type_in_model_config_names_path() -> None:
    message = build_error(depth_model(backbone=dict(VIT, norm_eps='1e-6')))
    assert ("backbone (DPTViT): norm_eps must be float, got str '1e-6'"
            in message)
    message = build_error(depth_model(
        decode_head=dict(DEPTH_HEAD, max_depth='10')))
    assert 'decode_head (DPTDepthHead): max_depth must be float or None' \
        in message


def test_lists_and_ints_pass_where_tuples_and_floats_are_annotated() -> None:
    # Configs carry lists after --cfg-options / dumps, ints for floats.
    model = MODELS.build(depth_model(
        backbone=dict(VIT, img_size=[32, 48], out_indices=[0, 1, 2, 3],
                      mlp_ratio=2, drop_path_rate=0),
        neck=dict(NECK, reassemble_channels=[8, 8, 16, 16],
                  resample_factors=[4, 2, 1, 0.5])))
    assert model.backbone.pos_grid == (2, 3)


# --------------------------------------------------------------------------
# Channels and hooks


def test_head_channels_must_match_neck_channels() -> None:
    message = build_error(depth_model(
        decode_head=dict(DEPTH_HEAD, in_channels=128)))
    assert 'decode_head.in_channels=128 but neck.channels=8' in message
    message = check_error(seg_model(
        auxiliary_head=dict(AUX_HEAD, in_channels=16, in_index=4)))
    assert 'auxiliary_head.in_channels=16 but neck.channels=8' in message
    assert 'auxiliary_head.in_index=4 but neck (DPTNeck) has 4 outputs' \
        in message
    # The joint model's depth head is checked too.
    message = build_error(dict(
        seg_model(auxiliary_head=None), type='DepthSegEstimator',
        depth_head=dict(DEPTH_HEAD, in_channels=32)))
    assert 'depth_head.in_channels=32 but neck.channels=8' in message


def test_neck_channels_must_match_backbone() -> None:
    message = build_error(depth_model(neck=dict(NECK, in_channels=32)))
    assert 'neck.in_channels=32 but backbone.embed_dims=16' in message
    message = build_error(depth_model(
        backbone=HYBRID,
        neck=dict(HYBRID_NECK, in_channels=(16, 64, 16, 16),
                  reassemble_channels=(16, 64, 16, 16))))
    assert ('neck.in_channels[1]=64 but backbone.stem_widths[1]=32 (neck '
            'level 1 reads the ResNet stage 1 output)') in message
    # ResNet maps have no class token: they must pass through.
    message = build_error(depth_model(
        backbone=HYBRID, neck=dict(HYBRID_NECK, passthrough_indices=(0, ))))
    assert 'neck level 1 reads ResNet stage 1' in message
    assert 'not in neck.passthrough_indices=(0,)' in message


def test_number_of_hooks_must_match_neck_levels() -> None:
    message = build_error(depth_model(backbone=dict(VIT, out_indices=(1, 2,
                                                                      3))))
    assert ('neck (DPTNeck) has 4 levels (len(neck.reassemble_channels)=4) '
            'but backbone (DPTViT) returns 3 feature maps '
            '(backbone.out_indices=(1, 2, 3))') in message
    # A repeated block is returned once.
    message = build_error(depth_model(backbone=dict(VIT, out_indices=(0, 1, 3,
                                                                      3))))
    assert 'returns 3 feature maps' in message
    message = build_error(depth_model(
        backbone=dict(HYBRID, stem_out_indices=(0, )), neck=HYBRID_NECK))
    assert ('returns 3 feature maps (ResNet stages '
            'backbone.stem_out_indices=(0,), then blocks '
            'backbone.out_indices=(0, 1))') in message


def test_repository_configs_pass() -> None:
    """No false alarm on any shipped config (paper, ablations, toy)."""
    paths = [p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                                  recursive=True)
             if '_base_' not in p]
    assert len(paths) > 10
    for path in paths:
        check_model_config(Config.fromfile(path).model)


def test_init_model_checks_encoder_decoder_configs() -> None:
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'toy', 'dpt_toy_seg.py'))
    with pytest.raises(ConfigError, match='decode_head.in_channels=64 but '
                       'neck.channels=32'):
        init_model(cfg, cfg_options={'model.decode_head.in_channels': 64})


# --------------------------------------------------------------------------
# tools/train.py: unknown type, missing config, missing data


def _train_main(monkeypatch, *argv: str) -> None:
    spec = importlib.util.spec_from_file_location('dpt_train_tool', TRAIN)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(sys, 'argv', [TRAIN, *argv])
    monkeypatch.setenv('LOCAL_RANK', '0')  # main() sets it otherwise
    tool.main()


def test_train_unknown_type_names_registry_and_closest(tmp_path) -> None:
    root = tmp_path / 'nyu'
    for sub in ('images/train', 'annotations/train', 'images/test',
                'annotations/test'):
        (root / sub).mkdir(parents=True)
    for sub in ('images/train', 'images/test'):  # not empty: no data error
        (root / sub / 'a.jpg').write_bytes(b'')
    proc = subprocess.run(
        [sys.executable, TRAIN, TOY_DEPTH, '--work-dir',
         str(tmp_path / 'work'), '--cfg-options', 'model.neck.type=DPTNek',
         f'train_dataloader.dataset.data_root={root}',
         f'val_dataloader.dataset.data_root={root}'],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert ("unknown model type 'DPTNek' in the mmseg::model registry: did "
            'you mean DPTNeck') in proc.stderr


def test_train_missing_config_names_path(monkeypatch) -> None:
    with pytest.raises(FileNotFoundError) as err:
        _train_main(monkeypatch, 'configs/toy/dpt_toy_dept.py')
    message = str(err.value)
    assert 'config file not found: configs/toy/dpt_toy_dept.py' in message
    assert 'configs/toy/dpt_toy_depth.py' in message  # the close name


def test_train_missing_data_root_fails_before_training(
        monkeypatch, tmp_path) -> None:
    work_dir = tmp_path / 'work'
    with pytest.raises(FileNotFoundError) as err:
        _train_main(monkeypatch, TOY_DEPTH, '--work-dir', str(work_dir),
                    '--cfg-options',
                    'train_dataloader.dataset.data_root=/nonexistent')
    assert str(err.value) == ('train_dataloader.dataset: data_root does not '
                              'exist: /nonexistent (NYUDataset)')
    assert not work_dir.exists()  # no runner was made


def test_check_data_paths_names_loader_key_and_folder(tmp_path) -> None:
    (tmp_path / 'img').mkdir()
    (tmp_path / 'img' / 'a.jpg').write_bytes(b'')  # not an empty folder
    dataset = dict(type='ADE20KDataset', data_root=str(tmp_path),
                   data_prefix=dict(img_path='img', seg_map_path='ann'))
    cfg = Config(dict(
        train_dataloader=dict(dataset=dict(
            type='ConcatDataset', datasets=[dataset])),
        val_cfg=dict(type='ValLoop'),
        val_dataloader=dict(dataset=dict(dataset, data_root='/nope')),
        test_dataloader=dict(dataset=dict(dataset, data_prefix=dict(
            img_path='img')))))
    with pytest.raises(FileNotFoundError) as err:
        check_data_paths(cfg, 'train')
    assert str(err.value).startswith(
        "train_dataloader.dataset: data_prefix seg_map_path='ann' is not a "
        f'folder: {tmp_path}/ann')
    cfg.train_dataloader.dataset.datasets[0].data_prefix.seg_map_path = 'img'
    with pytest.raises(FileNotFoundError, match='val_dataloader.dataset: '
                       'data_root does not exist: /nope'):
        check_data_paths(cfg, 'train')
    check_data_paths(cfg, 'test')  # the test loader is fine
