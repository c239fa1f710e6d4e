"""Which constructor failures under hydra.utils.instantiate the console reports as config mistakes.

A constructor error is the config's when the config gave the wrong key or value: Python refused
the keywords of the object's own constructor, or a library (torch, Lightning) refused a value
passed to it. A TypeError or ValueError raised by vidlearn's own code is a bug (vidlearn's checks
raise ConfigError) and keeps its traceback. The planted classes below are compiled as a module
of the vidlearn package, so their frames are vidlearn's.
"""

from __future__ import annotations

import sys
import types

import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from vidlearn.cli.console import user_mistake
from vidlearn.errors import ConfigError

PLANTED = """
from torch import nn

class Base:
    def __init__(self, width=1):
        self.width = width

class Forwarding:
    def __init__(self, depth=1, **options):
        self.options = Base(**options)

class Buggy:
    def __init__(self, width=1):
        self.size = width + None  # a programming error, whatever the config says

class WrongCall:
    def __init__(self, width=1):
        self.head = nn.Linear(width, 2, bias_=True)  # a keyword torch never took

class Dropping:
    def __init__(self, dropout=0.0):
        self.drop = nn.Dropout(dropout)
"""


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> str:
    """The planted module's name, importable by Hydra for the length of one test."""
    module = types.ModuleType("vidlearn.models.planted")
    exec(compile(PLANTED, "vidlearn/models/planted.py", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module.__name__


def failure(target: str, **kwargs: object) -> InstantiationException:
    with pytest.raises(InstantiationException, match="Error in call to target") as caught:
        instantiate({"_target_": target, **kwargs})
    return caught.value


def test_a_bug_in_a_vidlearn_constructor_keeps_its_traceback(planted) -> None:
    assert user_mistake(failure(f"{planted}.Buggy", width=3)) is None


def test_a_wrong_call_from_a_vidlearn_constructor_keeps_its_traceback(planted) -> None:
    assert user_mistake(failure(f"{planted}.WrongCall", width=3)) is None


def test_a_key_the_constructor_does_not_take_is_a_config_error(planted) -> None:
    assert isinstance(user_mistake(failure(f"{planted}.Base", nmae=3)), ConfigError)


def test_a_key_the_constructor_forwards_to_another_is_a_config_error(planted) -> None:
    mistake = user_mistake(failure(f"{planted}.Forwarding", nmae=3))
    assert isinstance(mistake, ConfigError) and "Remove that key" in str(mistake)


def test_a_value_torch_refuses_is_a_config_error(planted) -> None:
    mistake = user_mistake(failure(f"{planted}.Dropping", dropout=2.0))
    assert isinstance(mistake, ConfigError) and "dropout probability" in str(mistake)
