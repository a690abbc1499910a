"""The toy models compile without graph breaks (forward and backward),
export strictly, and the model code is plain PyTorch."""
import copy
import glob
import os.path as osp
import re
from typing import Tuple

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

import dpt_mm  # noqa: F401,I001  registers; shim before any mmseg import
from dpt_mm.accel import accelerate
from mmseg.registry import MODELS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
TOYS = sorted(osp.relpath(p, ROOT) for p in glob.glob(
    osp.join(ROOT, 'configs', 'toy', '*.py')))
SIZE = (96, 128)  # the toy configs' crop


def input_size(model: nn.Module) -> Tuple[int, int]:
    """The toy crop, padded to the patch size of a patch-14 backbone."""
    patch = getattr(model.model.backbone, 'patch_size', 16)
    return tuple(-(-s // patch) * patch for s in SIZE) if patch % 16 \
        else SIZE

# AOTAutograd without code generation: traces forward and backward.
aot_eager = torch._dynamo.lookup_backend('aot_eager')


class TensorMode(nn.Module):
    """``model(x, mode='tensor')`` as a one-argument module."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        out = self.model(x, mode='tensor')  # a pair for depth + seg
        return out if isinstance(out, tuple) else (out, )


def objective(outputs: Tuple[torch.Tensor, ...]) -> torch.Tensor:
    return sum(out.float().square().mean() for out in outputs)


def toy(path: str) -> nn.Module:
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return TensorMode(MODELS.build(Config.fromfile(osp.join(ROOT,
                                                            path)).model))


@pytest.mark.parametrize('path', TOYS)
def test_compile_has_no_graph_break_forward_and_backward(path):
    """dynamo sees one graph and no break, and AOTAutograd traces the
    backward of that graph whole (``fullgraph=True`` would raise on any
    break). The accelerator is on: its modules' gate is folded while
    compiling, so this is also the plain model's graph."""
    model = toy(path).train()
    for module in model.modules():  # eager and compiled RNG streams differ
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    eager = copy.deepcopy(model)
    assert accelerate(model, 'on') > 0
    x = torch.randn(1, 3, *input_size(model))
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return aot_eager(gm, example_inputs)

    torch._dynamo.reset()
    outs = torch.compile(model, backend=backend, fullgraph=True)(x)
    objective(outs).backward()
    torch._dynamo.reset()
    assert len(graphs) == 1
    refs = eager(x)
    objective(refs).backward()
    for out, ref in zip(outs, refs):
        assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5)
    grads = 0
    for (name, p), q in zip(model.named_parameters(), eager.parameters()):
        # The auxiliary head is a training-loss branch, not in mode='tensor'.
        assert (p.grad is None) == (q.grad is None), name
        if q.grad is not None:
            grads += 1
            assert torch.allclose(p.grad, q.grad, rtol=1e-3,
                                  atol=1e-6), name
    heads = [getattr(model.model, name) for name in ('decode_head',
                                                     'depth_head')
             if hasattr(model.model, name)]
    assert grads == sum(
        len(list(part.parameters()))
        for part in [model.model.backbone, model.model.neck, *heads])


@pytest.mark.parametrize('path', TOYS)
def test_strict_torch_export(path):
    model = toy(path).eval()
    accelerate(model, 'on')  # exported as the plain ops
    x = torch.randn(1, 3, *input_size(model))
    exported = torch.export.export(model, (x, ), strict=True)
    ops = {str(node.target) for node in exported.graph.nodes
           if node.op == 'call_function'}
    assert not any('convolution_backward' in op for op in ops)
    with torch.no_grad():
        for out, ref in zip(exported.module()(x), model(x)):
            assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_model_code_is_plain_pytorch():
    """No autograd.Function and no NumPy in dpt_mm/models: the CPU kernels
    live in dpt_mm/accel."""
    offenders = []
    for path in glob.glob(osp.join(ROOT, 'dpt_mm', 'models', '**', '*.py'),
                          recursive=True):
        with open(path) as f:
            source = f.read()
        for pattern in (r'autograd\.Function', r'^\s*import numpy',
                        r'^\s*from numpy', r'\bnp\.'):
            if re.search(pattern, source, re.MULTILINE):
                offenders.append((osp.relpath(path, ROOT), pattern))
    assert not offenders
