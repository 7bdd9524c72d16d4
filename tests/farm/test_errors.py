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
