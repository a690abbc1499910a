"""Draw every test image into one folder: ``tools/test.py --show-dir``.

mmseg's ``SegVisualizationHook`` draws one batch in ``interval`` (50), so a
test set of fewer than 50 images gives no picture at all, and it hands the
pictures to the visualiser's backends, which write
``<save_dir>/vis_data/vis_image/test_<name>_<step>.png``.
"""
import os.path as osp
from typing import Optional, Sequence

import mmcv
from mmengine import fileio
from mmengine.runner import Runner
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample

__all__ = ['ShowDirHook']


@HOOKS.register_module()
class ShowDirHook(SegVisualizationHook):
    """``SegVisualizationHook`` that draws every test image into ``out_dir``.

    In testing, each image's picture (segmentation overlay, or image |
    ground truth | prediction for depth, by the runner's visualiser) is
    written to ``out_dir/<image path relative to the data set's image
    folder, extension .png>``, so same-named images of different folders
    (KITTI) do not overwrite each other. Validation during training is
    drawn as by ``SegVisualizationHook``, every ``interval`` batches.

    Args:
        out_dir (str, optional): Folder of the test pictures. None draws
            test images as ``SegVisualizationHook`` does.
        **kwargs: :class:`SegVisualizationHook` arguments (``draw``,
            ``interval``, ``show``, ``wait_time``, ``backend_args``).
    """

    def __init__(self, out_dir: Optional[str] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.out_dir = out_dir

    def after_test_iter(self, runner: Runner, batch_idx: int,
                        data_batch: dict,
                        outputs: Sequence[SegDataSample]) -> None:
        """Draw every image of the batch into ``out_dir``.

        Args:
            runner (Runner): The runner of the test loop.
            batch_idx (int): Index of the batch in the loop.
            data_batch (dict): The batch from the data loader.
            outputs (Sequence[SegDataSample]): Predictions of the batch.
        """
        if self.out_dir is None:
            return super().after_test_iter(runner, batch_idx, data_batch,
                                           outputs)
        if not self.draw:
            return
        image_root = _image_root(runner)
        for output in outputs:
            img_path = output.img_path
            img = mmcv.imfrombytes(
                fileio.get(img_path, backend_args=self.backend_args),
                channel_order='rgb')
            name = osp.relpath(img_path, image_root) if image_root else ''
            if not name or name.startswith('..'):
                name = osp.basename(img_path)
            out_file = osp.join(self.out_dir, osp.splitext(name)[0] + '.png')
            # The runner's own visualiser: the one the hook caught at
            # construction is the process's latest, another run's in tests.
            runner.visualizer.add_datasample(
                f'test_{name}', img, data_sample=output, show=self.show,
                wait_time=self.wait_time, out_file=out_file)


def _image_root(runner: Runner) -> Optional[str]:
    dataset = getattr(runner.test_dataloader, 'dataset', None)
    prefix = getattr(dataset, 'data_prefix', None) or {}
    return prefix.get('img_path')
