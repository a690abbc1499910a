"""The default job: train and evaluate the toy DPT models on embedded data.

``make demo`` runs this. It generates the synthetic toy scenes (ADE20K and
NYU layouts) if they are missing, trains the toy depth and segmentation
models with ``tools/train.py``, evaluates them with ``tools/test.py``,
writes colourised depth maps and segmentation overlays with
``tools/infer.py`` and prints a table of the metrics next to what a
constant prediction scores. A second run reuses data and checkpoints
(``--retrain`` trains again).
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List

import cv2
import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TASKS = {
    'depth': dict(config='configs/toy/dpt_toy_depth.py', layout='nyu',
                  images='images/test'),
    'seg': dict(config='configs/toy/dpt_toy_seg.py', layout='ade',
                images='images/validation'),
}


# Lines of the tools' output worth showing; everything goes to the log.
SHOWN = ('Iter(train)', 'Iter(val) [', 'Iter(test) [', 'Error', 'error:',
         'Traceback', 'wrote', 'failed')


def run(cmd: List[str], log_file: str) -> None:
    """Run a tool, show its progress lines, keep its whole output in a log.

    Raises:
        subprocess.CalledProcessError: If the tool fails; the end of its
            output is printed first.
    """
    print('$', ' '.join(osp.relpath(c, ROOT) if c.startswith(ROOT) else c
                        for c in cmd), flush=True)
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    start = time.time()
    tail: List[str] = []
    with open(log_file, 'a') as log, subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True) as proc:
        for line in proc.stdout:
            log.write(line)
            tail = (tail + [line])[-40:]
            if any(key in line for key in SHOWN):
                # Drop mmengine's "date time - mmengine - INFO - " prefix.
                shown = line.rstrip().split(' - INFO - ', 1)[-1]
                print('  ' + shown[:150], flush=True)
    if proc.returncode:
        print(''.join(tail), flush=True)
        from dpt_mm.utils import UserError
        raise UserError(f'{osp.relpath(cmd[1], ROOT)} failed (exit code '
                        f'{proc.returncode}); its output is above and in '
                        f'{osp.relpath(log_file, ROOT)}')
    print(f'  done in {time.time() - start:.0f} s (log: '
          f'{osp.relpath(log_file, ROOT)})', flush=True)


def chance_depth(root: str) -> Dict[str, float]:
    """delta1 / AbsRel of predicting the training median depth everywhere."""
    read = lambda p: cv2.imread(p, cv2.IMREAD_UNCHANGED) / 1000.0  # noqa
    train = np.concatenate([
        read(p)[read(p) > 0]
        for p in sorted(glob.glob(osp.join(root, 'annotations/train/*.png')))
    ])
    median = float(np.median(train))
    d1, rel = [], []
    for path in sorted(glob.glob(osp.join(root, 'annotations/test/*.png'))):
        gt = read(path)
        gt = gt[(gt > 1e-3) & (gt < 10)]
        ratio = np.maximum(gt / median, median / gt)
        d1.append(np.mean(ratio < 1.25))
        rel.append(np.mean(np.abs(gt - median) / gt))
    return dict(d1=float(np.mean(d1)), abs_rel=float(np.mean(rel)))


def chance_seg(root: str) -> Dict[str, float]:
    """mIoU / aAcc of predicting the most frequent training class."""
    def labels(split: str) -> np.ndarray:
        files = sorted(glob.glob(osp.join(root, 'annotations', split,
                                          '*.png')))
        return np.concatenate([cv2.imread(p, 0).ravel() for p in files])

    train, val = labels('training'), labels('validation')
    counts = np.bincount(train[train > 0])
    majority = int(np.argmax(counts))
    val = val[val > 0]  # 0 is ignored (reduce_zero_label)
    present = np.unique(val)
    ious = [float(np.mean(val == majority)) if c == majority else 0.0
            for c in present]
    return dict(mIoU=100 * float(np.mean(ious)),
                aAcc=100 * float(np.mean(val == majority)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/toy')
    parser.add_argument('--retrain', action='store_true')
    parser.add_argument('--debug', action='store_true',
                        help='show the Python traceback of an error')
    args = parser.parse_args()
    py = sys.executable
    work_dir = osp.join(ROOT, args.work_dir)
    data_root = osp.join(ROOT, args.data_root)

    if not all(osp.isdir(osp.join(data_root, t['layout']))
               for t in TASKS.values()):
        run([py, 'tools/misc/make_toy_data.py', data_root, '--num-train',
             '320', '--num-val', '48', '--layouts', 'ade', 'nyu'],
            osp.join(work_dir, 'make_toy_data.log'))
    else:
        print(f'toy data found in {data_root}', flush=True)

    results = {}
    for task, spec in TASKS.items():
        task_dir = osp.join(work_dir, task)
        root = osp.join(data_root, spec['layout'])
        data_opt = [
            f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}'
        ]
        last = osp.join(task_dir, 'last_checkpoint')
        if args.retrain or not osp.isfile(last):
            run([py, 'tools/train.py', spec['config'], '--work-dir',
                 task_dir, '--cfg-options', *data_opt],
                osp.join(task_dir, 'train.log'))
        else:
            print(f'{task}: reusing {last}', flush=True)
        with open(last) as f:
            checkpoint = f.read().strip()
        metrics_file = osp.join(task_dir, 'metrics.json')
        run([py, 'tools/test.py', spec['config'], checkpoint, '--work-dir',
             task_dir, '--metrics-json', metrics_file, '--cfg-options',
             *data_opt], osp.join(task_dir, 'test.log'))
        with open(metrics_file) as f:
            results[task] = json.load(f)
        images = sorted(glob.glob(osp.join(root, spec['images'],
                                           '*.jpg')))[:4]
        run([py, 'tools/infer.py', spec['config'], checkpoint, *images,
             '--out-dir', osp.join(work_dir, 'pictures'),
             '--side-by-side'], osp.join(task_dir, 'infer.log'))

    depth_chance = chance_depth(osp.join(data_root, 'nyu'))
    seg_chance = chance_seg(osp.join(data_root, 'ade'))
    rows = [
        ('depth', 'delta1 (higher is better)', results['depth']['d1'],
         depth_chance['d1']),
        ('depth', 'AbsRel (lower is better)', results['depth']['abs_rel'],
         depth_chance['abs_rel']),
        ('seg', 'mIoU % (higher is better)', results['seg']['mIoU'],
         seg_chance['mIoU']),
        ('seg', 'aAcc % (higher is better)', results['seg']['aAcc'],
         seg_chance['aAcc']),
    ]
    print('\nToy DPT results (validation split of the toy scenes)')
    print(f'{"model":<7}{"metric":<28}{"trained":>10}{"constant":>10}')
    for task, name, value, chance in rows:
        print(f'{task:<7}{name:<28}{value:>10.3f}{chance:>10.3f}')
    summary = osp.join(work_dir, 'metrics.json')
    with open(summary, 'w') as f:
        json.dump(dict(trained=results, constant_prediction=dict(
            depth=depth_chance, seg=seg_chance)), f, indent=2)
    print(f'\nmetrics: {summary}')
    print(f'pictures: {osp.join(work_dir, "pictures")}')


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as error:  # a user's mistake: message and hint only
        from dpt_mm.utils.cli import exit_if_user_error
        exit_if_user_error(error)
        raise
