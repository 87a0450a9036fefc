"""Shared helpers of the CLI tests."""
import pytest

from pipelines.cli import main


def fails(capsys, *argv, code=2):
    """Runs ``s3ta argv`` in-process; returns stderr after checking the exit code, that no
    traceback was printed and that the message is one line."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    err = capsys.readouterr().err
    assert exc.value.code == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err
