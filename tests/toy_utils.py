"""Shrinking real configs so that they train on the toy scenes in seconds,
and the tiny components and data samples the model-level tests share."""
import copy
import importlib.util
import os.path as osp
from typing import Any, List, Tuple

import torch
from mmengine.config import Config
from mmengine.structures import PixelData

from dpt_mm.datasets.toy_scenes import generate_toy_data
from mmseg.structures import SegDataSample

TOY_SIZE = (64, 96)  # (H, W), multiples of 32
BENCH = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools',
                 'analysis_tools', 'benchmark.py')
# Tiny DPT components (32-pixel native grid) for model-level tests.
TINY_VIT = dict(type='DPTViT', img_size=32, patch_size=16, embed_dims=32,
                num_layers=4, num_heads=2, out_indices=(0, 1, 2, 3))
TINY_HYBRID = dict(type='DPTViTHybrid', img_size=32, patch_size=16,
                   embed_dims=32, num_layers=3, num_heads=2,
                   out_indices=(1, 2), stem_channels=8, stem_depths=(1, 1, 1),
                   stem_widths=(16, 32, 64), norm_groups=4)
TINY_NECK = dict(type='DPTNeck', in_channels=32,
                 reassemble_channels=(8, 16, 32, 32), channels=16)
HYBRID_NECK = dict(type='DPTNeck', in_channels=(16, 32, 32, 32),
                   reassemble_channels=(16, 32, 32, 32),
                   resample_factors=(1, 1, 1, 0.5), passthrough_indices=(0, 1),
                   channels=16)
TINY_BACKBONE = dict(embed_dims=32, num_layers=4, num_heads=2,
                     out_indices=(0, 1, 2, 3))
HYBRID_STEM = dict(stem_channels=8, stem_depths=(1, 1, 1),
                   stem_widths=(16, 32, 64), norm_groups=4,
                   num_layers=2, out_indices=(0, 1))


def load_bench():
    """tools/analysis_tools/benchmark.py as a module (it is a script)."""
    spec = importlib.util.spec_from_file_location('dpt_benchmark', BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seg_samples(batch: int, size: Tuple[int, int],
                num_classes: int) -> List[SegDataSample]:
    """Segmentation data samples with random labels in [0, num_classes)."""
    samples = []
    for _ in range(batch):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, *size)))
        sample.set_metainfo(dict(img_shape=size, ori_shape=size,
                                 pad_shape=size))
        samples.append(sample)
    return samples


def make_toy_root(tmp_path_factory, layouts=None) -> str:
    """Generate a small toy data set once per test session."""
    root = str(tmp_path_factory.getbasetemp() / 'toy')
    if not osp.isdir(osp.join(root, 'nyu')):
        generate_toy_data(root, num_train=8, num_val=4, size=TOY_SIZE,
                          seed=0)
    return root


def _shrink_pipeline(pipeline: list) -> None:
    for transform in pipeline:
        if 'crop_size' in transform:
            transform['crop_size'] = TOY_SIZE
        if transform.get('type') in ('Resize', 'RandomResize'):
            transform['scale'] = (TOY_SIZE[1], TOY_SIZE[0])
        if transform.get('type') == 'RandomResize':
            transform['ratio_range'] = (1.0, 1.25)


def _walk(node: Any) -> None:
    if isinstance(node, dict):
        if 'pipeline' in node and isinstance(node['pipeline'], list):
            _shrink_pipeline(node['pipeline'])
        for value in node.values():
            _walk(value)
    elif isinstance(node, list):
        for value in node:
            _walk(value)


def shrink_config(cfg: Config, data_root: str, work_dir: str,
                  max_iters: int = 2) -> Config:
    """Tiny model, toy data root, small crops, a few iterations, no workers.

    Component types, data set classes, transforms, losses and metrics stay
    those of the config: only sizes, paths and the schedule length change.
    """
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    backbone = model.backbone
    backbone.update(TINY_BACKBONE, img_size=TOY_SIZE)
    backbone.pop('init_cfg', None)
    if backbone.type == 'DPTViTHybrid':
        backbone.update(HYBRID_STEM)
    neck = model.neck
    if neck.type == 'DPTNeck':
        hybrid = backbone.type == 'DPTViTHybrid'
        neck.in_channels = (16, 32, 32, 32) if hybrid else 32
        neck.reassemble_channels = (16, 32, 32, 32) if hybrid else (8, 16,
                                                                   32, 32)
        neck.channels = 16
        if neck.get('fusion_norm_cfg'):
            neck.fusion_norm_cfg = dict(type='BN')
    for key in ('decode_head', 'auxiliary_head', 'depth_head'):
        head = model.get(key)
        if not head:
            continue
        head.in_channels = 16
        head.channels = 8 if head.type == 'DPTDepthHead' else 16
        if head.get('norm_cfg'):
            head.norm_cfg = dict(type='BN')
    model.data_preprocessor.size = TOY_SIZE
    model.pop('pretrained', None)
    cfg.load_from = None
    cfg.work_dir = work_dir
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = max_iters
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.batch_size = 2 if key == 'train_dataloader' else 1
        loader.dataset.data_root = osp.join(
            data_root, _toy_layout(loader.dataset.type))
    _walk(cfg._cfg_dict)
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    return cfg


def _toy_layout(dataset_type: str) -> str:
    return {
        'ADE20KDataset': 'ade',
        'PascalContextDataset59': 'pascal_context',
        'NYUDataset': 'nyu',
        'KITTIDepthDataset': 'kitti',
        'RelativeDepthDataset': 'relative',
        'DepthSegDataset': 'depth_seg',
    }[dataset_type]
