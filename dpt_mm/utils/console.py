"""A short console for ``tools/train.py`` and ``tools/test.py``; a full log.

mmengine's Runner prints about 400 lines before the first iteration: the
system environment, the whole config, the order of every hook, and notices
no user can act on. :func:`short_console` keeps those records out of the
console while the log file (``<work_dir>/<timestamp>/<timestamp>.log``)
still gets every one of them, and silences two deprecation warnings that
mmseg and mmengine raise from their own code.
"""
import logging
import os.path as osp
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Tuple

__all__ = ['ConsoleFilter', 'log_run_summary', 'shorten_console',
           'short_console', 'silence_known_warnings']

# Starts of log messages that only the log file gets.
FILE_ONLY: Tuple[str, ...] = (
    '\n' + '-' * 60 + '\nSystem environment:',
    'Config:\n',
    'Hooks will be executed in the following order:',
    'Distributed training is not used, all SyncBatchNorm',
    'The prefix is not set in metric class',
    '"FileClient" will be deprecated in future.',
    '"HardDiskBackend" is the alias of "LocalBackend"',
    'paramwise_options -- ',
    'Layer-wise lr decay param groups:',
)
# Python warnings raised inside mmseg / mmengine for their own calls.
KNOWN_WARNINGS: Tuple[str, ...] = (
    r'``build_loss`` would be deprecated soon',
    r'The draw is False, it means that the hook for visualization',
)


class ConsoleFilter(logging.Filter):
    """Drops the records whose message starts with one of :data:`FILE_ONLY`.

    Attached to a console handler only, so the file handler of the same
    logger still writes them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the console shows the record.

        Args:
            record (logging.LogRecord): The record.

        Returns:
            bool: False for the long dumps and known notices.
        """
        return not record.getMessage().startswith(FILE_ONLY)


def shorten_console(logger: logging.Logger) -> None:
    """Add :class:`ConsoleFilter` to the logger's console handlers.

    Args:
        logger (logging.Logger): e.g. an ``MMLogger``; its file handlers
            (``logging.FileHandler`` and subclasses) are left alone.
    """
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler) and not any(
                    isinstance(f, ConsoleFilter) for f in handler.filters):
            handler.addFilter(ConsoleFilter())


def silence_known_warnings() -> None:
    """Ignore the :data:`KNOWN_WARNINGS`, matched by message, for good."""
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=message,
                                category=UserWarning)


@contextmanager
def short_console() -> Iterator[None]:
    """Give every ``MMLogger`` created inside a short console.

    Wrap the Runner's construction in it: the Runner makes its logger and
    logs the environment and the config in the same constructor, so the
    filter must be on the console handler from the logger's first line.
    The filter stays for the logger's lifetime; ``MMLogger`` is restored on
    exit. Also calls :func:`silence_known_warnings`.

    Yields:
        None
    """
    from mmengine.logging import MMLogger
    silence_known_warnings()
    original_init = MMLogger.__init__

    def init(self: MMLogger, *args, **kwargs) -> None:
        original_init(self, *args, **kwargs)
        shorten_console(self)

    MMLogger.__init__ = init
    try:
        yield
    finally:
        MMLogger.__init__ = original_init


def log_run_summary(runner: Any, config_path: str) -> str:
    """Log, in place of the dumps, what the run is and where its log is.

    Args:
        runner (Runner): A built mmengine Runner.
        config_path (str): The config file given on the command line.

    Returns:
        str: The line logged (console and file), e.g. ``config
        configs/toy/dpt_toy_depth.py | work dir work_dirs/x | model 1.2 M
        parameters (1.2 M trainable) | full log (config, environment,
        hooks): work_dirs/x/20261203_170303/20261203_170303.log``.
    """
    model = getattr(runner.model, 'module', runner.model)  # DDP
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    log_file = next((h.baseFilename for h in runner.logger.handlers
                     if isinstance(h, logging.FileHandler)),
                    osp.join(runner.log_dir, f'{runner.timestamp}.log'))
    line = (f'config {config_path} | work dir {runner.work_dir} | model '
            f'{total / 1e6:.1f} M parameters ({trainable / 1e6:.1f} M '
            f'trainable) | full log (config, environment, hooks): '
            f'{log_file}')
    runner.logger.info(line)
    return line
