"""Constructor argument checks against simple type annotations.

A leaf module (imports nothing from dpt_mm), so every component can call
:func:`check_arg_types` and the model-config checks can reuse its helpers.
"""
import collections.abc
import numbers
import types
import typing
from typing import Any, Callable, List, Mapping, Optional, Union

__all__ = ['check_arg_types', 'type_problems']

_SIMPLE_TYPES = (bool, int, float, str)
# typing.Union, and ``int | None`` on Python >= 3.10.
_UNION_TYPES = (Union, getattr(types, 'UnionType', Union))


def _type_matches(value: Any, annotation: Any) -> Optional[bool]:
    """Whether value fits a simple annotation; None when it can't tell.

    Only int, float, bool, str, None and unions / sequences / tuples of
    them are judged: config dicts and anything richer are left to the
    constructor.
    """
    if annotation is type(None):
        return value is None
    if annotation in _SIMPLE_TYPES:
        if annotation is float:
            return isinstance(value, numbers.Real)
        if annotation is int:
            return isinstance(value, numbers.Integral)
        if annotation is bool:  # 0/1 work wherever a flag is tested
            return isinstance(value, (bool, numbers.Integral))
        return isinstance(value, str)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in _UNION_TYPES:
        verdicts = [_type_matches(value, arm) for arm in args]
        if any(v is True for v in verdicts):
            return True
        return None if None in verdicts else False
    if origin in (tuple, list, collections.abc.Sequence) and args:
        # Configs give lists where code says tuple (--cfg-options, dumps).
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args[-1] is not Ellipsis:
            if len(value) != len(args):
                return False
            verdicts = [_type_matches(v, a) for v, a in zip(value, args)]
        else:
            verdicts = [_type_matches(v, args[0]) for v in value]
        if any(v is False for v in verdicts):
            return False
        return None if None in verdicts else True
    return None


def _describe_type(annotation: Any) -> str:
    if annotation is type(None):
        return 'None'
    if annotation in _SIMPLE_TYPES:
        return annotation.__name__
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in _UNION_TYPES:
        return ' or '.join(_describe_type(a) for a in args)
    if origin is tuple and args and args[-1] is not Ellipsis:
        inner = {_describe_type(a) for a in args}
        if len(inner) == 1:
            return f'a sequence of {len(args)} {inner.pop()}'
    if origin in (tuple, list, collections.abc.Sequence) and args:
        return f'a sequence of {_describe_type(args[0])}'
    return getattr(annotation, '__name__', str(annotation))


def type_problems(owner: str, func: Callable,
                  values: Mapping[str, Any]) -> List[str]:
    """One line per value whose type contradicts func's annotation.

    Args:
        owner (str): Named at the start of each line.
        func (Callable): The annotated function.
        values (Mapping[str, Any]): Argument name → value.

    Returns:
        list[str]: ``'<owner>: <name> must be <type>, got ...'`` lines.
    """
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable annotations: nothing to check
        return []
    problems = []
    for name, value in values.items():
        if name in hints and _type_matches(value, hints[name]) is False:
            problems.append(
                f'{owner}: {name} must be {_describe_type(hints[name])}, '
                f'got {type(value).__name__} {value!r}')
    return problems


def check_arg_types(owner: Any, func: Callable,
                    values: Mapping[str, Any]) -> None:
    """Check constructor arguments against their simple type annotations.

    Meant as the first line of a constructor,
    ``check_arg_types(self, DPTNeck.__init__, locals())``, so that
    ``DPTNeck(reassemble_channels=256)`` fails with the class and the key
    named instead of deep inside torch. Only int / float / bool / str and
    sequences, tuples and unions of them are judged; other annotations and
    names not in the signature are ignored.

    Args:
        owner (str | object): The component (an instance names its class).
        func (Callable): The annotated function, e.g. ``DPTNeck.__init__``.
        values (Mapping[str, Any]): Argument name → value (``locals()``).

    Raises:
        TypeError: Lists each argument of the wrong type.
    """
    name = owner if isinstance(owner, str) else type(owner).__name__
    problems = type_problems(name, func, values)
    if problems:
        raise TypeError('\n'.join(problems))


