"""``DPTFCNHead``: the auxiliary head's old name, now mmseg's ``FCNHead``.

Configs and checkpoints' embedded configs written before the model code
became plain PyTorch name ``DPTFCNHead``, which was ``FCNHead`` with the
same layers and state-dict keys; the name still builds ``FCNHead``. Its
old ``with_cp``/``chunked_loss`` options are gone.
"""
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS

__all__ = ['DPTFCNHead']

DPTFCNHead = MODELS.register_module('DPTFCNHead', module=FCNHead)
