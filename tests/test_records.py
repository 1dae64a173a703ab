"""`caseflow.records.record`: what the model's classes relied on from `@dataclass` still holds
(construction, repr, equality, hashing, immutability, pickling), without import-time code generation."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from caseflow.records import field, record


@record(frozen=True)
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


@record(frozen=True)
class Tagged:
    name: str
    extra: dict[str, int] = field(default_factory=dict)
    note: str = field(default="", repr=False, compare=False)


@record
class Box:
    items: list[int] = field(default_factory=list)
    label: str = "box"
    later: list[int] = field(init=False, default_factory=list)
    unset: int = field(init=False)


@record(frozen=True, eq=False)
class Identity:
    value: int


@record(frozen=True)
class Point3(Point):
    z: int = 0


def test_a_record_is_built_by_position_or_keyword_with_its_defaults():
    assert (Point(1).x, Point(1).y, Point(1).tags) == (1, 0, ())
    assert Point(1, 2) == Point(x=1, y=2) == Point(y=2, x=1) == Point(1, y=2)
    assert vars(Point(y=2, x=1)) == {"x": 1, "y": 2, "tags": ()}      # in field order, as a pickle stores it
    assert Point3(1, 2, ("a",), 3).z == 3 and Point3(1).y == 0


def test_a_default_factory_gives_each_record_its_own_value():
    a, b = Box(), Box()
    a.items.append(1)
    a.later.append(2)
    assert (b.items, b.later) == ([], [])
    assert Tagged("t").extra == {} and Tagged("t").extra is not Tagged("t").extra


def test_a_field_outside_init_is_not_a_parameter_and_without_a_default_is_unset():
    box = Box([1], "b")
    assert (box.items, box.label, box.later) == ([1], "b", [])
    with pytest.raises(AttributeError):
        _ = box.unset
    with pytest.raises(TypeError, match="unexpected keyword argument 'later'"):
        Box(later=[1])  # type: ignore[call-arg]


def test_wrong_arguments_are_refused_as_python_refuses_them():
    with pytest.raises(TypeError, match=r"Point.__init__\(\) missing 1 required positional argument: 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"missing 2 required positional arguments: 'expr' and 'message'"):
        @record
        class Two:
            expr: str
            message: str
        Two()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'w'"):
        Point(1, w=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        Point(1, x=2)  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes 4 positional arguments but 5 were given"):
        Point(1, 2, (), 4)  # type: ignore[call-arg]


def test_a_field_without_a_default_may_not_follow_one_with_a_default():
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @record
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_repr_names_the_fields_except_those_kept_out():
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=())"
    assert repr(Tagged("t", {"a": 1}, note="hidden")) == "Tagged(name='t', extra={'a': 1})"


def test_equality_compares_the_compared_fields_of_the_same_class():
    assert Tagged("t", note="a") == Tagged("t", note="b")
    assert Point(1) != Point3(1) and Point(1) != (1, 0, ())
    one = Identity(1)
    assert one == one and one != Identity(1)              # eq=False: identity, as the Definition is
    assert hash(one) == object.__hash__(one) and len({one, Identity(1)}) == 2


def test_a_frozen_record_hashes_by_value_and_a_mutable_one_is_unhashable():
    assert hash(Point(1, 2)) == hash(Point(1, 2)) and len({Point(1), Point(1), Point(2)}) == 2
    @record(frozen=True)
    class Named:
        name: str
        note: str = field(default="", compare=False)

    assert hash(Named("t", "a")) == hash(Named("t", "b"))          # compare=False: not hashed either
    with pytest.raises(TypeError, match="unhashable"):
        hash(Box())


def test_a_frozen_record_refuses_assignment_and_deletion():
    p = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'x'"):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'x'"):
        del p.x  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.new = 1  # type: ignore[attr-defined]
    object.__setattr__(p, "y", 5)          # as Compiled keeps its CEL program after unpickling
    assert p == Point(1, 5)
    box = Box()
    box.label = "changed"
    assert box.label == "changed"


def test_a_record_pickles_to_an_equal_record():
    for value in (Point(1, 2, ("a",)), Point3(1, 2, (), 3), Tagged("t", {"a": 1}, "n"), Box([1], "b")):
        again = pickle.loads(pickle.dumps(value))
        assert type(again) is type(value) and vars(again) == vars(value)


def test_a_class_that_writes_its_own_init_keeps_it():
    @record(frozen=True)
    class Own:
        a: int
        b: int = 2

        def __init__(self, a: int, b: int = 2) -> None:
            self.__dict__.update(a=a * 10, b=b)

    assert Own(1) == Own(1, 2) and Own(1).a == 10 and repr(Own(1)).endswith(".<locals>.Own(a=10, b=2)")
    assert Own.__match_args__ == ("a", "b")
