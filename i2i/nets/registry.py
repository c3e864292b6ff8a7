"""Name -> network constructor registry (in the spirit of torchvision's ``register_model`` / ``get_model``).

Families register their classes or factory functions with :func:`register` at import time; ``import i2i.nets``
imports every family module, so all names are known after that import. Configs then name a net and its
keyword arguments, and :func:`build` validates those arguments against the constructor's signature before
calling it, so a typo in a YAML file becomes a :class:`~i2i.errors.ConfigError` naming the bad argument.

Example:
    >>> from i2i import nets
    >>> net = nets.build("patchgan", in_channels=6, base_channels=8)
    >>> "unet_256" in nets.list("unet")
    True
"""

from __future__ import annotations

import builtins
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from i2i.errors import ConfigError

T = TypeVar("T", bound=Callable[..., Any])

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[T], T]:
    """Register an ``nn.Module`` class or a factory function under ``name``.

    Args:
        name: Registry name, e.g. ``"unet_256"``. Must be unique.

    Returns:
        A decorator that records its argument and returns it unchanged.

    Raises:
        ValueError: ``name`` is already registered (a programming error, not a user error).
    """

    def decorator(constructor: T) -> T:
        if name in _REGISTRY:
            raise ValueError(f"network name {name!r} is already registered (by {_REGISTRY[name]!r})")
        _REGISTRY[name] = constructor
        return constructor

    return decorator


def list(prefix: str | None = None) -> builtins.list[str]:  # noqa: A001 - the public API is nets.list()
    """Return the registered names, sorted, optionally only those starting with ``prefix``."""
    return sorted(n for n in _REGISTRY if prefix is None or n.startswith(prefix))


def signature_of(name: str) -> inspect.Signature:
    """Return the constructor signature of ``name`` (without ``self``), e.g. for config validation.

    Raises:
        ConfigError: ``name`` is not registered.
    """
    return inspect.signature(_lookup(name))


def build(name: str, **kwargs: Any) -> nn.Module:
    """Construct the network registered as ``name`` with keyword arguments ``kwargs``.

    Args:
        name: A registered name (see :func:`list`).
        **kwargs: Constructor arguments; checked against the signature (names, required ones, and simple
            types ``int``/``float``/``bool``/``str``) before the constructor runs.

    Returns:
        The constructed network (default PyTorch initialisation; see :func:`i2i.nets.layers.init_weights`).

    Raises:
        ConfigError: unknown name, unknown or missing argument, or an argument of the wrong type.
    """
    constructor = _lookup(name)
    signature = inspect.signature(constructor)
    params = signature.parameters
    accepted = ", ".join(params) or "(none)"
    for key in kwargs:
        if key not in params:
            raise ConfigError(
                f"network {name!r} got an unknown argument {key!r}; accepted arguments: {accepted}"
            )
    for key, param in params.items():
        if param.default is inspect.Parameter.empty and key not in kwargs:
            raise ConfigError(f"network {name!r} needs the argument {key!r}; accepted arguments: {accepted}")
    hints = _type_hints(constructor)
    for key, value in kwargs.items():
        expected = hints.get(key)
        if expected is not None and not _matches(value, expected):
            raise ConfigError(
                f"network {name!r}: argument {key!r} must be {_type_name(expected)}, got {value!r}; "
                f"accepted arguments: {accepted}"
            )
    return constructor(**kwargs)


def _lookup(name: str) -> Callable[..., nn.Module]:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown network {name!r}; registered networks: {', '.join(list()) or '(none)'}")
    return _REGISTRY[name]


def _type_hints(constructor: Callable[..., Any]) -> dict[str, Any]:
    target = constructor.__init__ if inspect.isclass(constructor) else constructor
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: skip type checks rather than refuse to build
        return {}


# Plain scalar types we check; anything fancier (tensors, callables, configs) is left to the constructor.
_SCALARS = (bool, int, float, str)


def _matches(value: Any, expected: Any) -> bool:
    options = (
        typing.get_args(expected) if typing.get_origin(expected) in (typing.Union, types.UnionType) else ()
    )
    if options:
        return any(_matches(value, option) for option in options)
    if expected is type(None):
        return value is None
    if expected not in _SCALARS:
        return True
    if isinstance(value, bool):  # bool is an int subclass; `True` is never a valid channel count
        return expected is bool
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


def _type_name(expected: Any) -> str:
    return getattr(expected, "__name__", None) or str(expected)
