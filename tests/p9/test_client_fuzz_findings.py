"""What fuzzing the 9P client against a hostile server found (``python -m fuzz --target
p9_client``), each the smallest input that showed it."""

from __future__ import annotations

import pytest

from jetwire.p9.session import error_from_errno


@pytest.mark.parametrize("ecode", [0x80000000, 0xFFFFFFFF])
def test_an_rlerror_number_past_a_c_int_is_an_oserror(ecode: int) -> None:
    # an ecode is a u32; os.strerror raised OverflowError past a C int, out of the call
    error = error_from_errno(ecode, "Tgetattr", "a")
    assert type(error) is OSError and error.errno == ecode
    assert error.strerror == f"errno {ecode} (Tgetattr)" and error.filename == "a"
