"""Value records: `@record` gives a class what `@dataclass` gives it, without generating code at import.

`dataclasses.dataclass` writes `__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__` and
`__delattr__` as source text and compiles each with `exec` when the module is imported: about 1 ms
per frozen class on Python 3.11, some 25 ms for the records `caseflow show` loads (issue #18's
cold start). `@record` reads the same annotations and `dataclasses.field(...)` options, and puts
shared, generic methods on the class instead:

- `__init__(*fields)` by position or keyword, defaults and `default_factory`, `field(init=False)`;
  the same `TypeError`s for a missing, repeated or unknown argument;
- `__repr__` `Name(field=value, ...)` without the `repr=False` fields;
- `__eq__` on the `compare=True` fields, between instances of the same class (`eq=False`: identity);
- `frozen=True`: assignment and deletion raise `dataclasses.FrozenInstanceError`, and `__hash__`
  hashes the compared fields (mutable records with `eq` are unhashable, as dataclasses are);
- `__match_args__`. Instances keep a `__dict__`, so pickles (the definition cache) are unchanged.

Type checkers see a dataclass (`dataclass_transform`). A class that defines `__init__` itself keeps
it (the hot-path records do, for speed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, Field, FrozenInstanceError, field
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")

__all__ = ["field", "record"]


class _Spec:
    """The fields of one record class, in declaration order (base classes' first)."""

    __slots__ = ("init", "tail", "later", "shown", "compared")

    def __init__(self, fields: list[tuple[str, Any, Any, bool, bool, bool]]) -> None:
        self.init = tuple(f[0] for f in fields if f[3])                    # the __init__ parameters
        self.tail = tuple((f[0], f[1], f[2]) for f in fields if f[3])       # (name, default, factory)
        self.later = tuple((f[0], f[2]) for f in fields if not f[3] and f[2] is not MISSING)  # init=False
        self.shown = tuple(f[0] for f in fields if f[4])
        self.compared = tuple(f[0] for f in fields if f[5])


def _fields_of(cls: type) -> list[tuple[str, Any, Any, bool, bool, bool]]:
    inherited: dict[str, tuple[str, Any, Any, bool, bool, bool]] = {}
    for base in reversed(cls.__mro__[1:]):
        spec = base.__dict__.get("__record_fields__")
        if spec is not None:
            inherited.update((f[0], f) for f in spec)
    for name, hint in cls.__dict__.get("__annotations__", {}).items():
        text = hint if isinstance(hint, str) else getattr(hint, "__name__", "")
        if text.startswith(("ClassVar", "typing.ClassVar", "InitVar", "dataclasses.InitVar")):
            raise TypeError(f"@record does not support {text} ({cls.__qualname__}.{name})")
        value = cls.__dict__.get(name, MISSING)
        if isinstance(value, Field):
            default, factory = value.default, value.default_factory
            entry = (name, default, factory, value.init, value.repr, value.compare)
            if default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, default)
        else:
            entry = (name, value, MISSING, True, True, True)
        inherited.pop(name, None)
        inherited[name] = entry
    fields = list(inherited.values())
    seen_default = False
    for name, default, factory, init, _, _ in fields:
        if not init:
            continue
        if default is not MISSING or factory is not MISSING:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {name!r} follows default argument")
    return fields


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    spec: _Spec = type(self).__record__
    names = spec.init
    if not kwargs and len(args) == len(names):
        self.__dict__.update(zip(names, args))
    else:
        self.__dict__.update(_bind(spec, type(self).__qualname__, args, kwargs))
    for name, factory in spec.later:
        self.__dict__[name] = factory()


def _bind(spec: _Spec, owner: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The fields' values from a call that gives fewer arguments or keywords (defaults filled, in order)."""
    names = spec.init
    if len(args) > len(names):
        raise TypeError(f"{owner}.__init__() takes {len(names) + 1} positional arguments but {len(args) + 1} "
                        "were given")
    for key in kwargs:
        if key not in names:
            raise TypeError(f"{owner}.__init__() got an unexpected keyword argument {key!r}")
        if names.index(key) < len(args):
            raise TypeError(f"{owner}.__init__() got multiple values for argument {key!r}")
    values = dict(zip(names, args))
    missing = []
    for name, default, factory in spec.tail[len(args):]:
        if name in kwargs:
            values[name] = kwargs[name]
        elif factory is not MISSING:
            values[name] = factory()
        elif default is not MISSING:
            values[name] = default
        else:
            missing.append(repr(name))
    if missing:
        listed = " and ".join(", ".join(missing).rsplit(", ", 1))
        raise TypeError(f"{owner}.__init__() missing {len(missing)} required positional "
                        f"argument{'s' if len(missing) > 1 else ''}: {listed}")
    return values


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self).__record__.shown)
    return f"{type(self).__qualname__}({shown})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        compared = type(self).__record__.compared
        return tuple(getattr(self, n) for n in compared) == tuple(getattr(other, n) for n in compared)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, n) for n in type(self).__record__.compared))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _make(cls: type[T], frozen: bool, eq: bool) -> type[T]:
    c: Any = cls                    # methods are set on the class: not a type checker's business
    fields = _fields_of(cls)
    spec = _Spec(fields)
    own = cls.__dict__
    c.__record_fields__ = tuple(fields)
    c.__record__ = spec
    if "__init__" not in own:
        c.__init__ = _init
    if "__repr__" not in own:
        c.__repr__ = _repr
    if eq and "__eq__" not in own:
        c.__eq__ = _eq
    if frozen:
        c.__setattr__ = _frozen_setattr
        c.__delattr__ = _frozen_delattr
    if "__hash__" not in own or own["__hash__"] is None:
        if eq and frozen:
            c.__hash__ = _hash
        elif eq:
            c.__hash__ = None
    if "__match_args__" not in own:
        type.__setattr__(cls, "__match_args__", spec.init)
    if not own.get("__doc__"):
        c.__doc__ = f"{cls.__name__}({', '.join(spec.init)})"
    return cls


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, frozen: bool = False, eq: bool = True) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(field_specifiers=(field, Field))
def record(cls: type[T] | None = None, /, *, frozen: bool = False,
           eq: bool = True) -> type[T] | Callable[[type[T]], type[T]]:
    """`@record`, `@record(frozen=True)`, `@record(frozen=True, eq=False)`: see the module's docstring."""
    def wrap(c: type[T]) -> type[T]:
        return _make(c, frozen, eq)
    return wrap if cls is None else wrap(cls)
