"""`saga-sr recipe`: --help and its usage errors (the full recipe downloads packages: not a unit test)."""

import pytest

from saga_sr.cli import main


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["recipe", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--data", "--out", "--minutes", "--install", "mini"):
        assert flag in out


def test_bad_arguments_fail_before_any_work(tmp_path, capsys):
    assert main(["recipe", "mini", "--minutes", "0", "--data", str(tmp_path / "d")]) != 0
    assert "--minutes" in capsys.readouterr().err
    assert main(["recipe", "mini", "--freesound", str(tmp_path / "nope"), "--data", str(tmp_path / "d")]) != 0
    assert "--freesound" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    with pytest.raises(SystemExit):
        main(["recipe", "maxi"])
