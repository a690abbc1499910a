"""The console of a run is short, the log file complete (#16 item 17)."""
import logging
import warnings
from types import SimpleNamespace

from mmengine.logging import MessageHub, MMLogger

from dpt_mm.engine.hooks import CURRENT_SAMPLES_KEY, SampleTrackerHook
from dpt_mm.utils.console import (ConsoleFilter, short_console,
                                  silence_known_warnings)

ENV = '\n' + '-' * 60 + '\nSystem environment:\n    sys.platform: linux'
CONFIG = "Config:\nmodel = dict(\n    type='DPTDepthEstimator')"


def test_dumps_go_to_the_file_only(tmp_path, capsys) -> None:
    log_file = tmp_path / 'run.log'
    with short_console():
        logger = MMLogger.get_instance('dpt_console_test',
                                       log_file=str(log_file))
    for message in (ENV, CONFIG, 'Iter(train) [2/2]  loss: 5.9226'):
        logger.info(message)
    logger.warning('"FileClient" will be deprecated in future. Please use '
                   'io functions')
    console = capsys.readouterr().out
    assert 'Iter(train) [2/2]' in console
    assert 'System environment' not in console
    assert 'Config:' not in console and 'DPTDepthEstimator' not in console
    assert 'FileClient' not in console
    for handler in logger.handlers:
        handler.flush()
    text = log_file.read_text()
    for message in ('System environment:', CONFIG, 'Iter(train) [2/2]',
                    'FileClient'):
        assert message in text
    # Loggers made outside the context keep their whole console.
    other = MMLogger.get_instance('dpt_console_test_plain')
    assert not any(isinstance(f, ConsoleFilter)
                   for h in other.handlers for f in h.filters)


def test_known_warnings_are_silenced_by_message() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        silence_known_warnings()
        warnings.warn('``build_loss`` would be deprecated soon, please use '
                      '``mmseg.registry.MODELS.build()`` ', UserWarning)
        warnings.warn('The draw is False, it means that the hook for '
                      'visualization will not take effect.', UserWarning)
        warnings.warn('something a user can act on', UserWarning)
    assert [str(w.message) for w in caught] == ['something a user can act on']


def test_resume_does_not_warn_about_the_sample_key() -> None:
    hub = MessageHub.get_instance('dpt_console_test_hub')
    runner = SimpleNamespace(message_hub=hub)
    hook = SampleTrackerHook()
    batch = dict(data_samples=[dict(img_path='a.jpg')])
    hook.before_train_iter(runner, 0, batch)
    assert hub.get_info(CURRENT_SAMPLES_KEY) == ['a.jpg']
    checkpoint = dict(message_hub=hub.state_dict())
    hook.before_save_checkpoint(runner, checkpoint)
    assert CURRENT_SAMPLES_KEY not in checkpoint['message_hub'][
        'resumed_keys']
    assert hub.get_info(CURRENT_SAMPLES_KEY) == ['a.jpg']  # live hub intact

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        MessageHub.get_instance('dpt_console_test_resumed').load_state_dict(
            checkpoint['message_hub'])
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if 'resumed key' in r.getMessage()]
