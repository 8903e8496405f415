"""[backend.fpga] values that are not card/channel numbers are refused naming the key (issue 19,
finding 11: `card = "zero"` was a ValueError traceback)."""
from __future__ import annotations

import pytest

from tickpath.fpga.host.backend import FpgaBackend
from tickpath.runtime.core.errors import ConfigError


@pytest.mark.parametrize("key, value", [("card", "zero"), ("card", -1), ("card", 1.5), ("card", True),
                                        ("channel", 4), ("channel", "0")])
def test_bad_card_or_channel_names_the_key(key, value):
    with pytest.raises(ConfigError, match=f"backend.fpga.{key}"):
        FpgaBackend({"device_dir": "/nonexistent", key: value})


def test_good_numbers_are_kept():
    b = FpgaBackend({"device_dir": "/nonexistent", "card": 2, "channel": 3})
    assert (b.card, b.channel) == (2, 3)
