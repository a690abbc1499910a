"""tools/infer.py: the output folder is checked first; skipped entries are
listed."""
import os

import cv2

from test_inference import random_image, write_tiny_model
from test_infer_cli import infer_tool  # noqa: F401  (fixture)


def test_bad_out_dir_fails_before_the_model_is_loaded(infer_tool, tmp_path,
                                                      capsys, monkeypatch):
    image = str(tmp_path / 'a.png')
    cv2.imwrite(image, random_image(32, 48))
    loaded = []
    # infer.py imports it from dpt_mm.apis once the arguments are checked.
    monkeypatch.setattr('dpt_mm.apis.DPTInferencer',
                        lambda *a, **k: loaded.append(a))
    blocker = tmp_path / 'out.txt'
    blocker.write_text('a file, not a folder')
    for out_dir, message in (
            (blocker, f'--out-dir {blocker} exists and is not a folder'),
            (blocker / 'sub', f'--out-dir {blocker / "sub"} cannot be '
             'created: Not a directory')):
        code = infer_tool.main(['cfg.py', 'ckpt.pth', image, '--out-dir',
                                str(out_dir)])
        assert code == 2
        assert message in capsys.readouterr().err
    assert not loaded


def test_entries_named_like_images_that_are_not_images_are_listed(
        infer_tool, tmp_path, capsys):
    cfg, ckpt = write_tiny_model(str(tmp_path), 'depth')
    folder = tmp_path / 'photos'
    folder.mkdir()
    cv2.imwrite(str(folder / 'good.png'), random_image(32, 48))
    (folder / 'album.jpg').mkdir()
    os.symlink('loop.png', folder / 'loop.png')
    os.symlink('gone.png', folder / 'dangling.jpg')
    (folder / 'notes.txt').write_text('not named like an image')
    os.symlink('self.jpg', tmp_path / 'self.jpg')
    out_dir = tmp_path / 'out'
    code = infer_tool.main([cfg, ckpt, str(folder), str(tmp_path / 'self.jpg'),
                            '--out-dir', str(out_dir), '--no-npy'])
    err = capsys.readouterr().err
    assert code == 1  # the looping top-level input failed
    assert f'{tmp_path / "self.jpg"}: symlink loop' in err
    assert '3 folder entries named like images skipped:' in err
    for name, reason in (('album.jpg', 'a folder named like an image'),
                         ('dangling.jpg', 'broken symlink'),
                         ('loop.png', 'symlink loop')):
        assert f'{folder / name}: skipped: {reason}' in err
    assert 'notes.txt' not in err
    assert (out_dir / 'good_depth.png').is_file()
