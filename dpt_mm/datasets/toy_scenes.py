"""Deterministic synthetic "toy scenes" in the layouts of the real data sets.

A scene is seen by a pinhole camera standing on a ground plane, looking
horizontally at a back wall (slanted, so its depth changes across the
image); outdoor scenes show sky above the wall. A few textured shapes stand
on the floor at their own depths: rectangles (``cabinet``), disks
(``plate``) and triangles (``tree``), plus the odd unlabelled blob. Every
depth cue a tiny network can learn is there: tiles and stripes are fixed in
world units, so their image frequency grows with depth; objects further
away stand higher and are smaller; nearer objects occlude further ones; and
a light haze greys distant surfaces.

The same scenes are written as five data sets, each in the exact folder
layout and file format that the real data set uses, so that mmseg's own
data set classes (and ``dpt_mm``'s) read them unchanged:

.. code-block:: none

    OUT_DIR/
    ├── ade/                           ADE20KDataset (150 classes)
    │   ├── images/{training,validation}/ADE_{train,val}_00000001.jpg
    │   └── annotations/{training,validation}/ADE_*.png   8-bit, 0 = other
    ├── pascal_context/                PascalContextDataset59
    │   ├── JPEGImages/{train,val}_00000.jpg
    │   ├── SegmentationClassContext/{train,val}_00000.png  0 = background
    │   └── ImageSets/SegmentationContext/{train,val}.txt
    ├── nyu/                           NYUDataset
    │   ├── images/{train,test}/<category>_<id>.jpg
    │   └── annotations/{train,test}/<category>_<id>.png  uint16 mm, 0 = hole
    ├── kitti/                         KITTIDepthDataset
    │   ├── raw/2011_09_26/<drive>/image_02/data/<frame>.png
    │   ├── gt_depth/<drive>/proj_depth/groundtruth/image_02/<frame>.png
    │   └── splits/eigen_{train,test}_files_with_gt.txt
    ├── relative/                      RelativeDepthDataset
    │   └── {train,val}/
    │       ├── images/<stem>.jpg
    │       ├── disparity/<stem>.{png,npy,pfm}   PNG: disparity x 1000
    │       └── masks/<stem>.png                 some scenes, nonzero = valid
    └── depth_seg/                     DepthSegDataset (both labels)
        ├── images/{train,test}/<id>.jpg
        ├── labels/{train,test}/<id>.png       8-bit, 1 + toy class, 0 = other
        └── depth/{train,test}/<id>.png        uint16 mm, 0 = hole (as NYU)

Scene ``i`` of a split depends only on ``(seed, split, i)``, so the files
are byte-identical between runs and do not change when more scenes are
asked for.
"""
import io
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .pfm import encode_pfm

__all__ = [
    'ADE20K_LABELS', 'KITTI_PNG_SCALE', 'LAYOUTS', 'MAX_DEPTH', 'MIN_DEPTH',
    'NYU_CATEGORIES', 'NYU_PNG_SCALE', 'OTHER', 'PASCAL_CONTEXT59_LABELS',
    'RELATIVE_PNG_SCALE', 'TOY_CLASSES', 'ToyScene', 'generate_toy_data',
    'render_scene', 'scene_rng'
]

# Toy class ids are indices into TOY_CLASSES; OTHER marks unlabelled pixels.
TOY_CLASSES = ('wall', 'floor', 'sky', 'cabinet', 'plate', 'tree')
OTHER = 255
WALL, FLOOR, SKY, CABINET, PLATE, TREE = range(6)

# Values written into the label PNGs. ADE20K files hold 1 + the index in
# ADE20KDataset's 150 classes (0 = "other", dropped by reduce_zero_label);
# Pascal Context 59 files hold 1 + the index in PascalContextDataset59's 59
# classes (0 = background, also dropped by reduce_zero_label).
ADE20K_LABELS = {
    'wall': 1,
    'floor': 4,
    'sky': 3,
    'cabinet': 11,
    'plate': 143,
    'tree': 5
}
PASCAL_CONTEXT59_LABELS = {
    'wall': 56,
    'floor': 26,
    'sky': 47,
    'cabinet': 13,
    'plate': 38,
    'tree': 53
}
# Scene categories of NYUDataset; they only name the files.
NYU_CATEGORIES = ('bathroom', 'bedroom', 'classroom', 'dining_room',
                  'kitchen', 'living_room', 'office', 'study')

MIN_DEPTH, MAX_DEPTH = 0.5, 10.0
NYU_PNG_SCALE = 1000  # millimetres
KITTI_PNG_SCALE = 256  # KITTI depth PNG convention
RELATIVE_PNG_SCALE = 1000  # stored value per unit of disparity
LAYOUTS = ('ade', 'pascal_context', 'nyu', 'kitti', 'relative', 'depth_seg')
SPLITS = ('train', 'val')
_KITTI_FRAMES_PER_DRIVE = 8

_BASE_COLOURS = {  # RGB in [0, 1]: each class its own colour statistics
    WALL: ((0.72, 0.70, 0.66), (0.55, 0.36, 0.30)),  # plaster / brick
    FLOOR: ((0.55, 0.42, 0.30), (0.80, 0.72, 0.58)),  # two tile colours
    CABINET: ((0.62, 0.38, 0.16), (0.42, 0.24, 0.10)),  # wood grain
    PLATE: ((0.93, 0.92, 0.86), (0.35, 0.45, 0.70)),  # glaze / blue ring
    TREE: ((0.16, 0.50, 0.18), (0.08, 0.30, 0.10)),  # leaves
}


@dataclass
class ToyScene:
    """One rendered scene.

    Attributes:
        image (np.ndarray): H×W×3 uint8 RGB image.
        labels (np.ndarray): H×W uint8 toy class ids (indices into
            ``TOY_CLASSES``), ``OTHER`` (255) where unlabelled.
        depth (np.ndarray): H×W float32 depth in metres, in
            ``[MIN_DEPTH, MAX_DEPTH]``; sky is ``MAX_DEPTH``.
        focal (float): Focal length in pixels.
        outdoor (bool): Whether the scene shows sky.
    """
    image: np.ndarray
    labels: np.ndarray
    depth: np.ndarray
    focal: float
    outdoor: bool


def scene_rng(seed: int, split: str, index: int,
              *extra: int) -> np.random.Generator:
    """The random generator of one scene (and optional sub-stream).

    Args:
        seed (int): Data set seed.
        split (str): ``'train'`` or ``'val'``.
        index (int): Scene index within the split.
        *extra (int): Sub-stream ids (one per output layout), so that what a
            layout draws does not depend on which other layouts are written.

    Returns:
        np.random.Generator: Generator seeded from all of the above.
    """
    return np.random.default_rng([seed, SPLITS.index(split), index, *extra])


def _hash_noise(a: np.ndarray, b: np.ndarray, salt: float) -> np.ndarray:
    """Deterministic value noise in [0, 1) on integer lattice cells."""
    x = np.sin(a * 12.9898 + b * 78.233 + salt * 37.719) * 43758.5453
    return x - np.floor(x)


def _mix(c0: Sequence[float], c1: Sequence[float],
         t: np.ndarray) -> np.ndarray:
    c0, c1 = np.asarray(c0, np.float32), np.asarray(c1, np.float32)
    return c0 + (c1 - c0) * t[..., None].astype(np.float32)


def _shape_texture(kind: int, x: np.ndarray, y: np.ndarray,
                   radius: Optional[np.ndarray], tint: np.ndarray,
                   salt: float) -> np.ndarray:
    """Colour of a shape at world coordinates on its plane (metres)."""
    c0, c1 = (np.asarray(c) * tint for c in _BASE_COLOURS[kind])
    if kind == CABINET:
        # Vertical grain every 0.15 m and a drawer seam every 0.35 m.
        grain = 0.5 + 0.5 * np.sin(2 * np.pi * x / 0.15)
        seam = (np.mod(y, 0.35) < 0.03).astype(np.float32)
        return _mix(c0, c1, np.maximum(grain * 0.6, seam))
    if kind == PLATE:
        # Concentric rings every 0.08 m.
        rings = (np.mod(radius, 0.08) < 0.025).astype(np.float32)
        return _mix(c0, c1, rings)
    # TREE: leaf speckle on a 5 cm lattice.
    speckle = _hash_noise(np.floor(x / 0.05), np.floor(y / 0.05), salt)
    return _mix(c0, c1, speckle)


def render_scene(rng: np.random.Generator, height: int,
                 width: int) -> ToyScene:
    """Render one scene.

    Args:
        rng (np.random.Generator): Source of all randomness (see
            :func:`scene_rng`).
        height (int): Image height in pixels.
        width (int): Image width in pixels.

    Returns:
        ToyScene: Image, labels and depth of the scene.
    """
    h, w = height, width
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float32)
    focal = float(w * rng.uniform(0.8, 1.1))
    cx = (w - 1) / 2 + rng.uniform(-0.05, 0.05) * w
    horizon = h * rng.uniform(0.30, 0.45)
    near = rng.uniform(0.9, 1.6)  # floor depth at the bottom row
    cam_height = near * (h - 1 - horizon) / focal
    outdoor = bool(rng.random() < 0.4)
    tint = rng.uniform(0.85, 1.15, size=3)

    # Back wall: a vertical plane whose inverse depth is affine in u.
    wall_depth = rng.uniform(4.5, 9.0)
    slant = rng.uniform(-0.35, 0.35) / wall_depth
    inv_wall = 1.0 / wall_depth + slant * (uu - cx) / (w / 2)
    inv_wall = np.clip(inv_wall, 1.0 / 9.5, 1.0 / 3.0)
    # Floor: inverse depth grows linearly below the horizon.
    inv_floor = np.where(vv > horizon, (vv - horizon) / (focal * cam_height),
                         0.0)
    floor = inv_floor > inv_wall
    depth = np.where(floor, 1.0 / np.maximum(inv_floor, 1e-6),
                     1.0 / inv_wall).astype(np.float32)
    labels = np.where(floor, FLOOR, WALL).astype(np.uint8)
    world_x = (uu - cx) * depth / focal
    world_y = cam_height + (horizon - vv) * depth / focal  # above the floor
    if outdoor:
        sky = ~floor & (world_y > rng.uniform(1.0, 2.5))
        labels[sky] = SKY
        depth[sky] = MAX_DEPTH

    # Background colours.
    tiles = np.mod(np.floor(world_x / 0.5) + np.floor(depth / 0.5), 2)
    image = _mix(*(np.asarray(c) * tint for c in _BASE_COLOURS[FLOOR]),
                 tiles.astype(np.float32))
    brick_row = np.floor(world_y / 0.25)
    mortar = (np.mod(world_y, 0.25) < 0.03) | (
        np.mod(world_x + 0.25 * np.mod(brick_row, 2), 0.5) < 0.03)
    brick = _mix(*(np.asarray(c) * tint for c in _BASE_COLOURS[WALL]),
                 (~mortar).astype(np.float32) * 0.7)
    image = np.where((labels == WALL)[..., None], brick, image)
    if outdoor:
        sky_colour = _mix((0.35, 0.55, 0.90), (0.80, 0.88, 0.97),
                          np.clip(vv / max(horizon, 1.0), 0, 1))
        image = np.where((labels == SKY)[..., None], sky_colour, image)

    # Shapes stand on the floor; a z-buffer keeps the nearest surface.
    for _ in range(int(rng.integers(2, 6))):
        kind = int(rng.choice([CABINET, PLATE, TREE, OTHER],
                              p=[0.35, 0.3, 0.3, 0.05]))
        z = rng.uniform(near + 0.3, wall_depth * 0.85)
        u_centre = rng.uniform(0.05, 0.95) * w
        x_centre = (u_centre - cx) * z / focal
        x = (uu - cx) * z / focal - x_centre  # plane coordinates, metres
        y = cam_height + (horizon - vv) * z / focal
        radius = None
        if kind == CABINET:
            half_w, top = rng.uniform(0.2, 0.5), rng.uniform(0.5, 1.6)
            inside = (np.abs(x) <= half_w) & (y >= 0) & (y <= top)
        elif kind == PLATE:
            r, lift = rng.uniform(0.15, 0.35), rng.uniform(0.0, 0.6)
            radius = np.hypot(x, y - lift - r)
            inside = radius <= r
        elif kind == TREE:
            half_base, top = rng.uniform(0.25, 0.6), rng.uniform(0.8, 2.0)
            inside = (y >= 0) & (y <= top) & (np.abs(x) <= half_base *
                                               (top - y) / top)
        else:  # unlabelled blob with per-pixel noise
            a, b = rng.uniform(0.15, 0.4, size=2)
            inside = (x / a)**2 + ((y - b) / b)**2 <= 1
        inside &= z < depth
        if not inside.any():
            continue
        if kind == OTHER:
            colour = rng.uniform(0, 1, size=(h, w, 3)).astype(np.float32)
        else:
            colour = _shape_texture(kind, x, y, radius, tint,
                                    float(rng.uniform(0, 100)))
        image = np.where(inside[..., None], colour, image)
        depth[inside] = z
        labels[inside] = kind

    # Haze: distant surfaces fade to grey-blue, a cue for depth.
    haze = (1.0 - np.exp(-depth / 18.0))[..., None]
    image = image * (1 - haze) + np.array([0.70, 0.74, 0.80]) * haze
    image = image * rng.uniform(0.85, 1.1) + rng.normal(
        0, 0.015, size=image.shape)
    image = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    depth = np.clip(depth, MIN_DEPTH, MAX_DEPTH).astype(np.float32)
    return ToyScene(image, labels, depth, focal, outdoor)


# --------------------------------------------------------------- writers --


def _write(path: str, data: bytes) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


def _png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode('.png', array)
    assert ok
    return buf.tobytes()


def _lut(mapping: Dict[str, int]) -> np.ndarray:
    lut = np.zeros(256, np.uint8)  # OTHER and anything else -> 0
    for name, value in mapping.items():
        lut[TOY_CLASSES.index(name)] = value
    return lut


_ADE_LUT = _lut(ADE20K_LABELS)
_PASCAL_LUT = _lut(PASCAL_CONTEXT59_LABELS)


def _kinect_depth_mm(scene: ToyScene, rng: np.random.Generator) -> np.ndarray:
    """uint16 millimetres with Kinect-like holes (0) on object boundaries."""
    depth_mm = np.round(scene.depth * NYU_PNG_SCALE).astype(np.uint16)
    edges = np.zeros(scene.labels.shape, bool)
    edges[:, 1:] |= scene.labels[:, 1:] != scene.labels[:, :-1]
    edges[1:, :] |= scene.labels[1:, :] != scene.labels[:-1, :]
    depth_mm[edges & (rng.random(edges.shape) < 0.5)] = 0
    return depth_mm


class _Writer:
    """Writes the scenes of one split into every requested layout."""

    def __init__(self, out_dir: str, split: str, seed: int,
                 layouts: Sequence[str]) -> None:
        self.out_dir = out_dir
        self.split = split
        self.seed = seed
        self.layouts = layouts
        self.pascal_names: List[str] = []
        self.kitti_lines: List[str] = []

    def write(self, index: int, scene: ToyScene) -> None:
        bgr = np.ascontiguousarray(scene.image[..., ::-1])
        jpg = cv2.imencode('.jpg', bgr,
                           [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        for layout in self.layouts:
            rng = scene_rng(self.seed, self.split, index,
                            1 + LAYOUTS.index(layout))
            getattr(self, f'_{layout}')(index, scene, jpg, rng)

    def finish(self) -> None:
        if 'pascal_context' in self.layouts:
            _write(
                osp.join(self.out_dir, 'pascal_context', 'ImageSets',
                         'SegmentationContext', f'{self.split}.txt'),
                ''.join(f'{n}\n' for n in self.pascal_names).encode())
        if 'kitti' in self.layouts:
            name = 'train' if self.split == 'train' else 'test'
            _write(
                osp.join(self.out_dir, 'kitti', 'splits',
                         f'eigen_{name}_files_with_gt.txt'),
                ''.join(f'{line}\n' for line in self.kitti_lines).encode())

    def _ade(self, index: int, scene: ToyScene, jpg: bytes,
             rng: np.random.Generator) -> None:
        sub = 'training' if self.split == 'train' else 'validation'
        stem = f'ADE_{self.split}_{index + 1:08d}'
        root = osp.join(self.out_dir, 'ade')
        _write(osp.join(root, 'images', sub, f'{stem}.jpg'), jpg)
        _write(
            osp.join(root, 'annotations', sub, f'{stem}.png'),
            _png(_ADE_LUT[scene.labels]))

    def _pascal_context(self, index: int, scene: ToyScene, jpg: bytes,
                        rng: np.random.Generator) -> None:
        stem = f'{self.split}_{index:05d}'
        root = osp.join(self.out_dir, 'pascal_context')
        _write(osp.join(root, 'JPEGImages', f'{stem}.jpg'), jpg)
        _write(
            osp.join(root, 'SegmentationClassContext', f'{stem}.png'),
            _png(_PASCAL_LUT[scene.labels]))
        self.pascal_names.append(stem)

    def _nyu(self, index: int, scene: ToyScene, jpg: bytes,
             rng: np.random.Generator) -> None:
        sub = 'train' if self.split == 'train' else 'test'
        category = NYU_CATEGORIES[int(rng.integers(len(NYU_CATEGORIES)))]
        stem = f'{category}_{index:04d}'
        root = osp.join(self.out_dir, 'nyu')
        _write(osp.join(root, 'images', sub, f'{stem}.jpg'), jpg)
        _write(osp.join(root, 'annotations', sub, f'{stem}.png'),
               _png(_kinect_depth_mm(scene, rng)))

    def _depth_seg(self, index: int, scene: ToyScene, jpg: bytes,
                   rng: np.random.Generator) -> None:
        sub = 'train' if self.split == 'train' else 'test'
        stem = f'{self.split}_{index:05d}'
        root = osp.join(self.out_dir, 'depth_seg')
        _write(osp.join(root, 'images', sub, f'{stem}.jpg'), jpg)
        # 1 + class, 0 = unlabelled (OTHER + 1 wraps to 0 in uint8).
        _write(osp.join(root, 'labels', sub, f'{stem}.png'),
               _png((scene.labels + 1).astype(np.uint8)))
        _write(osp.join(root, 'depth', sub, f'{stem}.png'),
               _png(_kinect_depth_mm(scene, rng)))

    def _kitti(self, index: int, scene: ToyScene, jpg: bytes,
               rng: np.random.Generator) -> None:
        # Train and test drives are disjoint, as in the Eigen split.
        first_drive = 1 if self.split == 'train' else 501
        drive = (f'2011_09_26_drive_'
                 f'{first_drive + index // _KITTI_FRAMES_PER_DRIVE:04d}_sync')
        frame = f'{index % _KITTI_FRAMES_PER_DRIVE:010d}.png'
        image_rel = f'2011_09_26/{drive}/image_02/data/{frame}'
        depth_rel = f'{drive}/proj_depth/groundtruth/image_02/{frame}'
        root = osp.join(self.out_dir, 'kitti')
        bgr = np.ascontiguousarray(scene.image[..., ::-1])
        _write(osp.join(root, 'raw', image_rel), _png(bgr))
        # Like the real Eigen test list, some test frames have no ground
        # truth: "None" in the split file and no depth file.
        if self.split == 'val' and index % 10 == 9:
            depth_rel = 'None'
        else:
            # LiDAR: nothing in the top rows or the sky, a sparse sample of
            # 5-15 % of the pixels below.
            height = scene.depth.shape[0]
            valid = rng.random(scene.depth.shape) < rng.uniform(0.05, 0.15)
            valid[:int(0.35 * height)] = False
            valid &= scene.labels != SKY
            depth = np.where(valid,
                             np.round(scene.depth * KITTI_PNG_SCALE), 0)
            _write(
                osp.join(root, 'gt_depth', depth_rel),
                _png(depth.astype(np.uint16)))
        self.kitti_lines.append(f'{image_rel} {depth_rel} {scene.focal:.4f}')

    def _relative(self, index: int, scene: ToyScene, jpg: bytes,
                  rng: np.random.Generator) -> None:
        root = osp.join(self.out_dir, 'relative', self.split)
        stem = f'{self.split}_{index:05d}'
        # Disparity up to an unknown scale and shift, as relative data sets
        # give it; sky (infinitely far) is 0 = invalid.
        scale, shift = rng.uniform(1.0, 2.0), rng.uniform(0.0, 0.05)
        disparity = (scale / scene.depth + shift).astype(np.float32)
        disparity[scene.labels == SKY] = 0
        valid = np.ones(scene.depth.shape, bool)
        if index % 4 == 0:  # a validity mask hides a random box
            h, w = valid.shape
            top, left = rng.integers(0, h // 2), rng.integers(0, w // 2)
            valid[top:top + h // 4, left:left + w // 4] = False
            _write(osp.join(root, 'masks', f'{stem}.png'),
                   _png(valid.astype(np.uint8) * 255))
        fmt = ('png', 'npy', 'pfm')[index % 3]
        if fmt == 'png':
            stored = np.round(disparity * RELATIVE_PNG_SCALE)
            data = _png(stored.astype(np.uint16))
        else:
            if index % 5 == 0:
                # Float maps carry the invalid values real files have: a box
                # of NaN (npy) or inf (pfm), and a negative pixel.
                h, w = disparity.shape
                top, left = rng.integers(0, h // 2), rng.integers(0, w // 2)
                disparity[top:top + h // 6, left:left + w // 6] = (
                    np.nan if fmt == 'npy' else np.inf)
                disparity[-1, -1] = -1.0
            if fmt == 'npy':
                buf = io.BytesIO()
                np.save(buf, disparity, allow_pickle=False)
                data = buf.getvalue()
            else:
                data = encode_pfm(disparity, little_endian=index % 2 == 0)
        _write(osp.join(root, 'images', f'{stem}.jpg'), jpg)
        _write(osp.join(root, 'disparity', f'{stem}.{fmt}'), data)


def generate_toy_data(out_dir: str,
                      num_train: int = 64,
                      num_val: int = 16,
                      size: Tuple[int, int] = (96, 128),
                      seed: int = 0,
                      layouts: Sequence[str] = LAYOUTS,
                      progress: Optional[Callable[[], None]] = None
                      ) -> Dict[str, str]:
    """Render scenes and write them in the requested data set layouts.

    Args:
        out_dir (str): Output folder; one sub-folder per layout.
        num_train (int): Training scenes. Defaults to 64.
        num_val (int): Validation/test scenes. Defaults to 16.
        size (tuple[int, int]): Image ``(height, width)``. Defaults to
            ``(96, 128)``, small enough to train on a CPU in minutes.
        seed (int): Seed; the same seed gives byte-identical files.
        layouts (Sequence[str]): Any of :data:`LAYOUTS`. Defaults to all.
        progress (Callable, optional): Called once per scene written.

    Returns:
        dict[str, str]: Layout name -> its ``data_root``.
    """
    unknown = [layout for layout in layouts if layout not in LAYOUTS]
    if unknown:
        raise ValueError(f'unknown layouts {unknown}; choose from {LAYOUTS}')
    height, width = size
    if height < 16 or width < 16:
        raise ValueError(f'image size must be at least 16x16, got {size}')
    for split, count in zip(SPLITS, (num_train, num_val)):
        writer = _Writer(out_dir, split, seed, layouts)
        for index in range(count):
            scene = render_scene(scene_rng(seed, split, index), height, width)
            writer.write(index, scene)
            if progress is not None:
                progress()
        writer.finish()
    return {layout: osp.join(out_dir, layout) for layout in layouts}
