"""The README's commands pair each converted checkpoint with its config."""
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _code_lines():
    with open(osp.join(ROOT, 'README.md')) as f:
        text = f.read()
    blocks = re.findall(r'```[a-z]*\n(.*?)```', text, flags=re.S)
    return [line for block in blocks for line in block.splitlines()]


def test_hf2mm_weights_are_used_with_the_config_hf2mm_wrote():
    """hf2mm.py weights carry Transformers' numerics (LayerNorm eps 1e-12);
    the repo's configs carry the original's (1e-6)."""
    lines = _code_lines()
    converted = {}
    for line in lines:
        match = re.search(r'hf2mm\.py \S+ (\S+) --config-out (\S+)', line)
        if match:
            converted[match.group(1)] = match.group(2)
    assert converted
    uses = [(line, ckpt, config) for line in lines
            for ckpt, config in converted.items()
            if ckpt in line and 'hf2mm.py' not in line]
    assert uses  # the README shows how to use them
    for line, ckpt, config in uses:
        assert config in line, f'{ckpt} used without {config}: {line}'
        assert 'configs/' not in line, line
