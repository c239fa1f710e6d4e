"""How every Hydra console script starts and ends: `@console_main("train")`.

It starts with third-party noise silenced (vidlearn.cli.quiet). It ends a user's mistake with
one clean block on stderr and exit code 2, and a bug with its traceback. A mistake is a
`vidlearn.errors.UserError` (bad manifest, missing file, invalid or mismatched config value,
missing weights, too many bad files), a missing mandatory config value, or a config Hydra
cannot compose (an unknown key or group choice, a malformed override). The block says what is
wrong and where. `HYDRA_FULL_ERROR=1` shows the full traceback instead, as it does for Hydra's
own errors. Before the task runs, `vidlearn.cli.schema.validate` checks the types and ranges of
the keys the script's config has, so every script refuses `data.frames=abc` the same way.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep
from hydra.errors import HydraException, InstantiationException
from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from vidlearn.cli.config import CONF_DIR, CONFIG_PATH
from vidlearn.cli.quiet import silence_third_party_noise
from vidlearn.cli.schema import check_added_keys, closest_sibling, validate
from vidlearn.errors import ConfigError, UserError

DEBUG_VARIABLE = "HYDRA_FULL_ERROR"
USER_MISTAKES = (UserError, MissingMandatoryValue, InterpolationResolutionError, OSError)
# Python's words when a call is given a keyword its function does not take.
UNEXPECTED_KEY = re.compile(r"got an unexpected keyword argument '(\w+)'")
EXIT_USER_ERROR = 2
# How torch.utils.data re-raises an exception from a DataLoader worker: its class, then this
# line, then the worker's traceback ending in "<Class>: <message>".
_WORKER_TRACE = "\nOriginal Traceback (most recent call last):\n"


def user_mistake(error: BaseException) -> BaseException | None:
    """The user mistake behind `error`: itself, or the cause hydra.utils.instantiate wrapped.

    A constructor refusing a keyword is a key the user added (`+data.nmae=x`); a constructor
    refusing a value (`model.dropout=abc`, `trainer.accelerator=gpu` on a machine without one) or a path
    (`data.frame_cache=/no/such/folder`) was given it by the config. Both are reported as a
    ConfigError with Hydra's message, which names the class and the config node. An OSError
    (a file that cannot be read or written: `out=/read-only/x.csv`) names the path.
    """
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        cause = error.__cause__
        if isinstance(cause, UserError):  # the constructor's own message names the key
            return cause
        refused = not isinstance(cause, InstantiationException) and config_refused(cause)
        if refused and isinstance(cause, TypeError) and UNEXPECTED_KEY.search(str(cause)):
            return ConfigError(f"{error}\nRemove that key, or check its spelling.")
        if refused:
            return ConfigError(f"{error}\nCheck the values of that config node.")
        error = cause
    return error if isinstance(error, USER_MISTAKES) else None


def config_refused(cause: BaseException) -> bool:
    """Whether a constructor's `cause` refuses what the config gave it, rather than being a bug.

    vidlearn's own checks raise ConfigError, so a TypeError or ValueError raised in vidlearn
    code is a bug (`width + None`, a keyword torch never took), unless it is Python refusing a
    keyword that the vidlearn function received in its own `**options` and passed on (a
    DataModule's row keys, given to RowOptions). Raised anywhere else, it is Python binding the
    config's keys to the target, or a library (torch, Lightning) refusing a value the config
    passed it. OSError and Lightning's MisconfigurationException name the file or setting
    wherever they are raised.
    """
    if isinstance(cause, OSError) or is_misconfiguration(cause):
        return True
    if not isinstance(cause, TypeError | ValueError | ImportError):
        return False  # ImportError: a library missing the package a setting needs
    trace = cause.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    if trace is None or not trace.tb_frame.f_globals.get("__name__", "").startswith("vidlearn."):
        return True
    refused = UNEXPECTED_KEY.search(str(cause))
    code = trace.tb_frame.f_code
    if refused is None or not code.co_flags & inspect.CO_VARKEYWORDS:
        return False
    has_varargs = bool(code.co_flags & inspect.CO_VARARGS)
    options = code.co_varnames[code.co_argcount + code.co_kwonlyargcount + has_varargs]
    return refused[1] in trace.tb_frame.f_locals.get(options, {})


def is_misconfiguration(cause: BaseException) -> bool:
    """Whether `cause` is Lightning's MisconfigurationException (a setting it refuses).

    Looked up among the loaded modules rather than imported: Lightning takes seconds to import,
    which the scripts that need no model should not pay, and an instance exists only once
    Lightning has been loaded.
    """
    exceptions = sys.modules.get("lightning_fabric.utilities.exceptions")
    return exceptions is not None and isinstance(cause, exceptions.MisconfigurationException)


def group_override_mistake(arguments: list[str]) -> str | None:
    """Why an override gives a config group something other than a name, or None.

    Hydra answers `augment=null` or `=3` with its own traceback, before any vidlearn code runs.
    """
    overrides = [argument for argument in arguments if not argument.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return None  # Hydra reports a malformed override itself, without a traceback
    for override in parsed:
        group = override.key_or_group
        is_group = not group or (CONF_DIR / group.split("@")[0]).is_dir()
        value = override.value()
        # a sweep (`-m mix=none,mixup`) gives the group each of its choices in turn
        choices = list(value.list) if isinstance(value, ChoiceSweep) else [value]
        named = all(isinstance(choice, (str, list)) for choice in choices)
        if is_group and not override.is_delete() and not named:
            return (
                f"{override.input_line!r}: {group or 'an override'} needs the name of a config "
                f"{'file of conf/' + group if group else 'key before ='}, not {value!r}."
            )
    return None


def misspelt_key_hints(config_name: str, arguments: list[str]) -> list[str]:
    """`KEY: did you mean CLOSE?` for each override of a key the config lacks (Hydra's refusal
    names the key and offers only to add it with `+`); empty when the config with the
    arguments' group choices cannot be composed either."""
    overrides = [argument for argument in arguments if not argument.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        choices = [o.input_line for o in parsed if (CONF_DIR / o.key_or_group).is_dir()]
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name, overrides=choices)
    except HydraException:
        return []
    hints = []
    for override in parsed:
        key = override.key_or_group
        if override.is_add() or override.is_delete() or (CONF_DIR / key).is_dir():
            continue
        parent, close = closest_sibling(cfg, key)
        parent_key, _, leaf = key.rpartition(".")
        if parent is not None and leaf not in parent and close:
            hints.append(f"{key}: did you mean {parent_key + '.' if parent_key else ''}{close}?")
    return hints


def describe(error: BaseException) -> str:
    """The message of `error` as a user should read it, without a DataLoader worker's traceback."""
    text = str(error).strip()
    if _WORKER_TRACE in text:
        trace = text.split(_WORKER_TRACE, 1)[1]
        marker = f"{type(error).__name__}: "
        start = trace.rfind(f"\n{type(error).__module__}.{marker}")
        start = trace.rfind(f"\n{marker}") if start < 0 else start
        if start >= 0:
            text = trace[start:].split(": ", 1)[1].strip()
    return text or type(error).__name__


def console_main(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[..., Any]]:
    """`@hydra.main` for a vidlearn console script, reporting user mistakes as described above.

    Two layers: inside Hydra, a user mistake raised by the task exits 2 before Hydra prints its
    "Error executing job" header; around Hydra, a config that cannot be composed (Hydra has
    already printed why and exits 1 before the task starts) exits 2 too.
    """

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[..., Any]:
        started = False

        @functools.wraps(task)
        def reporting_task(cfg: DictConfig) -> Any:
            nonlocal started
            started = True
            silence_third_party_noise()
            try:
                validate(cfg)  # every script: a mistyped value fails here, naming its key
                check_added_keys(cfg, list(HydraConfig.get().overrides.task))
                return task(cfg)
            except Exception as error:
                mistake = user_mistake(error)
                if mistake is None or os.environ.get(DEBUG_VARIABLE) == "1":
                    raise
                exit_with(describe(mistake))

        entry = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)(
            reporting_task
        )

        @functools.wraps(entry)
        def console_entry(*args: Any, **kwargs: Any) -> Any:
            nonlocal started
            started = False  # per call: tests and fuzzers call main() more than once
            mistake = group_override_mistake(sys.argv[1:])
            if mistake is not None:
                exit_with(mistake)
            try:
                return entry(*args, **kwargs)
            except SystemExit as stop:
                if stop.code == 1 and not started:  # Hydra's own report of a config error
                    for hint in misspelt_key_hints(config_name, sys.argv[1:]):
                        print(hint, file=sys.stderr)
                    raise SystemExit(EXIT_USER_ERROR) from None
                raise

        return console_entry

    return decorate


def exit_with(message: str) -> NoReturn:
    """Print `message` as one block on stderr, with the debug hint, and exit with code 2."""
    program = os.path.basename(sys.argv[0]) or "vidlearn"
    print(f"{program}: error: {message}", file=sys.stderr)
    print(f"(set {DEBUG_VARIABLE}=1 for the full traceback)", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)
