"""Export a dpt_mm DPT model as a Transformers folder.

    python tools/model_converters/mm2hf.py CONFIG CHECKPOINT OUT_DIR

OUT_DIR receives ``config.json``, ``model.safetensors`` and
``preprocessor_config.json``: ``pipeline('depth-estimation', model=OUT_DIR)``,
``AutoModelForDepthEstimation`` and ``DPTForSemanticSegmentation`` load it
with no missing or unexpected keys and give dpt_mm's numbers. Encoders:
ViT and ViT-Hybrid (depth and segmentation); BEiT, Swin V2 and DINOv2 as
``DPTForDepthEstimation`` with a ``backbone_config``. Depth Anything models
(V1, V2, V2 metric) become ``DepthAnythingForDepthEstimation``. The image
processor comes from the config's ``inference_pipeline`` (``DPTResize`` with
``backend='pil'``) and data preprocessor. A setting Transformers cannot
express (a depth output mode, readout or auxiliary head it lacks, the
release's weight standardisation, an OpenCV resize...) is refused with a
message that names it. A checkpoint converted by hf2mm.py goes back to the
very same ``config.json`` and weights. Transformers itself is not needed.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

__all__ = ['export', 'main']


def export(config: str, checkpoint: str, out_dir: str,
           approximate_resize: bool = False, trust: bool = False) -> None:
    """Write the Transformers folder for a config and checkpoint.

    Args:
        config (str): dpt_mm config file.
        checkpoint (str): dpt_mm checkpoint (``.pth`` or ``.safetensors``).
        out_dir (str): Output folder.
        approximate_resize (bool): Accept an OpenCV ``DPTResize`` and write
            Pillow's filter of the same name.
        trust (bool): Full unpickling of the checkpoint.
    """
    import dpt_mm  # noqa: F401  (registers the modules)
    from dpt_mm.apis.inference import inference_pipeline_config
    from dpt_mm.converters import save_hf_folder
    from dpt_mm.utils import load_checkpoint_file, load_config
    cfg = load_config(config)
    loaded = load_checkpoint_file(checkpoint, trust=trust)
    written = save_hf_folder(cfg.model.to_dict(), loaded, out_dir,
                             inference_pipeline_config(cfg),
                             approximate_resize)
    conversion = written['conversion']
    print(conversion.summary())
    if written['preprocessor'].get('keep_aspect_ratio') and \
            written['config']['model_type'] == 'dpt':
        # Transformers 5.24 reshapes a plain ViT's tokens to a square grid
        # and runs the hybrid at image_size only.
        print('note: keep_aspect_ratio=True gives non-square network inputs '
              'for non-square photos, which Transformers DPT (ViT and '
              'hybrid) refuses; dpt_mm runs them')
    arch = written['config']['architectures'][0]
    print(f'wrote {out_dir}: config.json ({arch}), model.safetensors '
          f'({len(conversion.state_dict)} tensors), preprocessor_config.json')


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description='Export a dpt_mm DPT model as a Transformers '
        'save_pretrained folder.')
    parser.add_argument('config', help='dpt_mm config file')
    parser.add_argument('checkpoint', help='dpt_mm checkpoint (.pth or '
                        '.safetensors)')
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--approximate-resize', action='store_true',
                        help="accept an OpenCV DPTResize (backend='cv2') and "
                        "write Pillow's filter of the same name (network "
                        'inputs then differ slightly)')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle the checkpoint without restriction '
                        '(trusted files only)')
    parser.add_argument('--debug', action='store_true',
                        help='show the Python traceback of an error')
    args = parser.parse_args(argv)
    from dpt_mm.converters import CheckpointMismatchError
    try:
        export(args.config, args.checkpoint, args.out_dir,
               args.approximate_resize, args.trust_checkpoint)
    except (CheckpointMismatchError, KeyError, ValueError,
            FileNotFoundError) as err:
        print(f'error: {err.args[0] if isinstance(err, KeyError) else err}',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as error:  # a user's mistake: message and hint only
        from dpt_mm.utils.cli import exit_if_user_error
        exit_if_user_error(error)
        raise
