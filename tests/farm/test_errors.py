"""farm.errors: user errors become one stderr line and exit code 2; bugs keep their traceback."""

from __future__ import annotations

import pytest

from farm.errors import UserError, exit_on_user_error


def test_user_error_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    @exit_on_user_error
    def main() -> int:
        raise UserError("archs.txt: line 3: 'x' is not an arch string;\nfix the line")

    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "error: archs.txt: line 3: 'x' is not an arch string; fix the line" in err


def test_return_value_passes_through_and_other_errors_propagate() -> None:
    assert exit_on_user_error(lambda: 7)() == 7

    @exit_on_user_error
    def buggy() -> None:
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        buggy()


def test_ctrl_c_is_one_line_and_exit_130(capsys: pytest.CaptureFixture[str]) -> None:
    from farm.errors import Interrupted

    def interrupt() -> None:
        raise KeyboardInterrupt

    def interrupt_with_news() -> None:
        raise Interrupted("12 row(s) of campaign c1 are stored in m; re-run the same command to resume")

    for fn, expected in ((interrupt, "interrupted\n"), (interrupt_with_news, "interrupted: 12 row(s) of campaign c1")):
        with pytest.raises(SystemExit) as caught:
            exit_on_user_error(fn)()
        assert caught.value.code == 130
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err


def test_a_closed_stdout_ends_quietly_with_141(tmp_path) -> None:
    """``farm status | head``: the reader is gone before the command writes; no traceback, exit 141."""
    import subprocess
    import sys

    script = ("from farm.errors import exit_on_user_error\n"
              "exit_on_user_error(lambda: print('row\\n' * 100000))()\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()  # like `head` after its line
    _, err = process.communicate(timeout=60)
    assert process.returncode == 141 and err == b""
