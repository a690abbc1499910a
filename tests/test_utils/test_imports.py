"""Dependencies inside ``dpt_mm`` point one way, and nothing imports in a loop.

The layers, lowest first (README, "Layout"); a module may import from its
own layer and the layers below, never from a layer above:

0. ``compat`` (the mmcv shim), ``version``
1. ``utils``: config lookup, errors, argument types, checkpoint files
2. ``converters``: pure functions over state dicts (they reach the models
   only through the registry)
3. ``models``
4. ``datasets``, ``evaluation``, ``engine``, ``visualization``
5. ``apis``
6. ``dpt_mm/__init__.py`` (registration), then ``tools/`` (not a package
   layer: nothing in ``dpt_mm`` may import it)

Every import counts, also those inside functions: a deferred import still
is a dependency, it only hides a cycle until run time.
"""
import ast
import os
import os.path as osp
from typing import Dict, List, Set, Tuple

import pytest

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
PACKAGE = osp.join(REPO, 'dpt_mm')

LAYERS: List[Tuple[str, ...]] = [
    ('compat', 'version'),
    ('utils', ),
    ('converters', ),
    ('models', ),
    ('accel', 'datasets', 'evaluation', 'engine', 'visualization'),
    ('apis', ),
]
LAYER_OF = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ROOT_RANK = len(LAYERS)  # dpt_mm/__init__.py

# Upward imports in files another engineer is moving; each entry must still
# be there (a stale entry fails), so the list only shrinks.
PENDING: Dict[str, str] = {}


def _module_name(path: str) -> str:
    rel = osp.relpath(path, REPO)[:-len('.py')].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def _imports(path: str) -> List[Tuple[str, int]]:
    """Absolute names of the dpt_mm modules (or names) a file imports."""
    module = _module_name(path)
    is_package = path.endswith('__init__.py')
    package = module if is_package else module.rpartition('.')[0]
    found = []
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split('.')
                base = parts[:len(parts) - node.level + 1]
                name = '.'.join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ''
            # `from pkg import sub` imports the module pkg.sub when it is one.
            for alias in node.names:
                sub = f'{name}.{alias.name}'
                found.append((sub if _is_module(sub) else name, node.lineno))
    return [(n, line) for n, line in found
            if n == 'dpt_mm' or n.startswith(('dpt_mm.', 'tools'))]


def _is_module(name: str) -> bool:
    path = osp.join(REPO, *name.split('.'))
    return osp.isfile(path + '.py') or osp.isfile(
        osp.join(path, '__init__.py'))


def _rank(module: str) -> int:
    parts = module.split('.')
    if len(parts) == 1:
        return ROOT_RANK
    if parts[1] not in LAYER_OF:
        pytest.fail(f'{module}: dpt_mm/{parts[1]} is not in the layer list '
                    'of tests/test_imports.py (and the README\'s Layout); '
                    'add it where it belongs')
    return LAYER_OF[parts[1]]


def _graph() -> Dict[str, Set[Tuple[str, int]]]:
    graph = {}
    for folder, _, files in os.walk(PACKAGE):
        for file in files:
            if file.endswith('.py'):
                path = osp.join(folder, file)
                graph[_module_name(path)] = set(_imports(path))
    return graph


def test_no_upward_import() -> None:
    problems = []
    for module, imports in sorted(_graph().items()):
        if module in PENDING:
            continue
        for target, line in sorted(imports):
            if target.startswith('tools'):
                problems.append(f'{module}:{line} imports {target} (tools/ '
                                'sits above the package)')
            elif _rank(target) > _rank(module):
                problems.append(
                    f'{module}:{line} imports {target}: layer '
                    f'{_rank(target)} above layer {_rank(module)}')
    assert not problems, 'upward imports:\n' + '\n'.join(problems)


def test_pending_entries_are_still_needed() -> None:
    graph = _graph()
    stale = [
        m for m in PENDING if m not in graph or all(
            _rank(t) <= _rank(m) for t, _ in graph[m]
            if not t.startswith('tools'))
    ]
    assert not stale, f'remove from PENDING (fixed or gone): {stale}'


def _cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in edges.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    graph = _graph()
    modules = {
        m: {t
            for t, _ in targets if t in graph and t != m}
        for m, targets in graph.items() if m not in PENDING
    }
    # A package's __init__ importing its own submodules is how packages
    # work; a cycle through it counts when it leaves the package.
    packages = {}
    for module, targets in modules.items():
        source = '.'.join(module.split('.')[:2])
        for target in targets:
            dest = '.'.join(target.split('.')[:2])
            if dest != source:
                packages.setdefault(source, set()).add(dest)
    cycles = _cycles(modules) + _cycles(packages)
    assert not cycles, 'import cycles:\n' + '\n'.join(
        ' <-> '.join(c) for c in cycles)


def test_the_checks_see_a_violation(tmp_path) -> None:
    """The graph reader finds relative, absolute and deferred imports."""
    path = osp.join(PACKAGE, 'utils', 'config.py')
    targets = {t for t, _ in _imports(path)}
    assert 'dpt_mm.utils.arg_types' in targets  # `from .arg_types import`
    assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == [['a', 'b', 'c']]
    assert _rank('dpt_mm.models.check') > _rank('dpt_mm.utils.config')
