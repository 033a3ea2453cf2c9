"""Claims and findings as compact records: plain tuples between the stages and on disk.

The pydantic models (:class:`claimscrub.model.Claim`, :class:`claimscrub.findings.Finding`)
are what edits, writers and users see. What the run's store keeps of them is a tuple of
their field values in declaration order, nested models as nested tuples, with the few
values marshal cannot hold turned into plain ones (``Decimal`` -> its exact text, ``date``
-> its ordinal, an enum -> its value), serialized with :mod:`marshal`. No model is pickled.

Decoding builds the models again without validating what was validated when the claim was
read (the same shortcut as pydantic's own unpickling: the instance's ``__dict__`` is set
from the values), so a record costs a few dict and tuple operations per model.

The encoding lives only as long as one run (a marshal format is tied to the Python version
that wrote it): it is a spill format, never a file a user keeps.
"""

from __future__ import annotations

import marshal
import typing
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any, Callable, Optional

from pydantic import BaseModel

from claimscrub.findings import Finding
from claimscrub.model import BillingProvider, Claim, InterchangeInfo, Patient, Subscriber


def decimal_in(value: Optional[Decimal]) -> Optional[str]:
    """An amount as its exact text, for a compact record (None stays None)."""
    return None if value is None else str(value)


def decimal_out(value: Optional[str]) -> Optional[Decimal]:
    """The amount :func:`decimal_in` wrote."""
    return None if value is None else Decimal(value)


def _date_in(value: Optional[date]) -> Optional[int]:
    return None if value is None else value.toordinal()


def _date_out(value: Optional[int]) -> Optional[date]:
    return None if value is None else date.fromordinal(value)


def _enum_in(value: Optional[Enum]) -> Any:
    return None if value is None else value.value


def _enum_out(enum: type[Enum]) -> Callable[[Any], Any]:
    members = dict(enum._value2member_map_)
    return lambda value: None if value is None else members[value]


def _plain_type(annotation: Any) -> Any:
    """``X`` of ``Optional[X]`` (and ``X`` itself)."""
    if typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _instance_source(fields: str, fields_set: str) -> str:
    """The body of a compiled function that returns an instance of ``cls`` whose
    ``__dict__`` is the expression ``fields``, without pydantic validating it (as its own
    unpickling does); ``new`` and ``setattr`` are ``cls.__new__`` and ``object.__setattr__``."""
    return (
        "    obj = new(cls)\n"
        f"    setattr(obj, '__dict__', {fields})\n"
        f"    setattr(obj, '__pydantic_fields_set__', {fields_set})\n"
        "    setattr(obj, '__pydantic_extra__', None)\n"
        "    setattr(obj, '__pydantic_private__', None)\n"
        "    return obj\n"
    )


class ModelCodec:
    """Encodes one pydantic model class to a tuple of plain values and back.

    The conversions are derived from the model's field annotations, once, and compiled
    into one function each way (one tuple or dict display per model, no loop over fields):
    plain fields (``str``, ``int``, ``bool``, lists and tuples of them) pass as they are;
    ``Decimal``, ``date``, enums, nested models and lists or tuples of nested models are
    converted. Print
    ``codec.source`` to read what was compiled.
    """

    #: how many decoded objects a shared codec remembers (claims of one subscriber in a row)
    MEMO_SIZE = 1024

    def __init__(self, cls: type[BaseModel], shared: bool = False):
        self.cls = cls
        #: objects many claims hold alike (the interchange, the billing provider, the
        #: subscriber, the patient), as the reader shares them: decoded once while their
        #: claims follow each other, then the same object is handed out again
        self._memo: Optional[dict[tuple, Any]] = {} if shared else None
        self.names = tuple(cls.model_fields)
        env: dict[str, Any] = {
            "cls": cls, "new": cls.__new__, "setattr": object.__setattr__, "NAMES": frozenset(self.names),
            "Decimal": Decimal, "fromordinal": date.fromordinal,
        }
        encode, decode = [], []
        for i, name in enumerate(self.names):
            value_in, value_out = f"d[{name!r}]", f"v[{i}]"
            kind = _plain_type(cls.model_fields[name].annotation)
            origin, args = typing.get_origin(kind), typing.get_args(kind)
            if origin is list or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
                # list[X] and tuple[X, ...]: a tuple on disk, the same container back
                item, container = args[0], "list" if origin is list else "tuple"
                if isinstance(item, type) and issubclass(item, BaseModel):
                    sub = codec_for(item)
                    env[f"enc_{i}"], env[f"dec_{i}"] = sub.encode, sub.decode
                    encode.append(f"tuple([enc_{i}(x) for x in {value_in}])")
                    decode.append(f"{container}([dec_{i}(x) for x in {value_out}])")
                else:
                    encode.append(f"tuple({value_in})")
                    decode.append(f"{container}({value_out})")
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                sub = codec_for(kind)
                env[f"enc_{i}"], env[f"dec_{i}"] = sub.encode, sub.decode
                encode.append(f"enc_{i}({value_in})")
                decode.append(f"dec_{i}({value_out})")
            elif kind is Decimal:
                encode.append(f"_n if (_n := {value_in}) is None else str(_n)")
                decode.append(f"None if (_n := {value_out}) is None else Decimal(_n)")
            elif kind is date:
                encode.append(f"_n if (_n := {value_in}) is None else _n.toordinal()")
                decode.append(f"None if (_n := {value_out}) is None else fromordinal(_n)")
            elif isinstance(kind, type) and issubclass(kind, Enum):
                env[f"members_{i}"] = dict(kind._value2member_map_)
                encode.append(f"_n if (_n := {value_in}) is None else _n.value")
                decode.append(f"None if (_n := {value_out}) is None else members_{i}[_n]")
            elif kind in (str, int, bool):
                encode.append(value_in)
                decode.append(value_out)
            else:
                raise TypeError(f"{cls.__name__}.{name}: no compact encoding for {kind!r}")
        fields = ", ".join(f"{name!r}: ({expr})" for name, expr in zip(self.names, decode))
        self.source = (
            "def encode(obj):\n"
            "    d = obj.__dict__\n"
            f"    return ({', '.join(f'({e})' for e in encode)},)\n"
            "def build(v):\n"
            + _instance_source(f"{{{fields}}}", "set(NAMES)")
        )
        exec(compile(self.source, f"<codec of {cls.__name__}>", "exec"), env)
        self.encode: Callable[[BaseModel], tuple] = env["encode"]
        self._build: Callable[[tuple], Any] = env["build"]
        if self._memo is None:
            self.decode = self._build  # type: ignore[method-assign]

    def decode(self, values: tuple) -> Any:
        memo = self._memo
        obj = memo.get(values)
        if obj is None:
            if len(memo) >= self.MEMO_SIZE:
                memo.clear()
            obj = memo[values] = self._build(values)
        return obj


def trusted_constructor(cls: type[BaseModel]) -> Callable[[dict], Any]:
    """A constructor of ``cls`` from field values already of the field's type, as the
    claim builder makes them (text from the segment, ``Decimal`` and ``date`` from their
    parsers, nested models built the same way) and the claim history its earlier claims
    (:mod:`claimscrub.history.prior`): pydantic's validation of each value is
    skipped, as :meth:`ModelCodec.decode` skips it. Fields left out take their default
    (a new empty list for a list, as pydantic gives each instance its own); a field name
    the model does not have raises ``TypeError``, a required field left out ``KeyError``.

    tests/test_trusted_models.py checks that every claim of the corpus and the fixtures
    is the same built this way as validated by pydantic."""
    names = tuple(cls.model_fields)
    env: dict[str, Any] = {"cls": cls, "new": cls.__new__, "setattr": object.__setattr__,
                           "NAMES": frozenset(names)}
    values = []
    for i, name in enumerate(names):
        info = cls.model_fields[name]
        if info.is_required():
            values.append(f"{name!r}: kw[{name!r}]")
        elif isinstance(info.default, list) and not info.default:
            values.append(f"{name!r}: kw[{name!r}] if {name!r} in kw else []")
        elif info.default is None or isinstance(info.default, (str, int, bool)):
            values.append(f"{name!r}: kw.get({name!r}, {info.default!r})")
        elif isinstance(info.default, BaseModel):
            # a model default (Subscriber.payer): shared, as decoded claims share theirs
            env[f"default_{i}"] = info.default
            values.append(f"{name!r}: kw.get({name!r}, default_{i})")
        else:
            raise TypeError(f"{cls.__name__}.{name}: no trusted default for {info.default!r}")
    source = (
        "def trusted(kw):\n"
        "    if not NAMES.issuperset(kw):\n"
        "        raise TypeError(f'{cls.__name__} has no field {sorted(set(kw) - NAMES)}')\n"
        + _instance_source(f"{{{', '.join(values)}}}", "set(kw)")
    )
    exec(compile(source, f"<trusted {cls.__name__}>", "exec"), env)
    return env["trusted"]


_CODECS: dict[type, ModelCodec] = {}


def codec_for(cls: type[BaseModel]) -> ModelCodec:
    codec = _CODECS.get(cls)
    if codec is None:
        codec = _CODECS[cls] = ModelCodec(cls, shared=cls in _SHARED)
    return codec


#: the loops above the claim, which the reader hands to every claim below them
_SHARED = (InterchangeInfo, BillingProvider, Subscriber, Patient)


CLAIM = codec_for(Claim)
FINDING = codec_for(Finding)


def dump_claim(claim: Claim) -> bytes:
    return marshal.dumps(CLAIM.encode(claim))


def load_claim(data: bytes) -> Claim:
    return CLAIM.decode(marshal.loads(data))


def dump_finding(finding: Finding) -> bytes:
    return marshal.dumps(FINDING.encode(finding))


def load_finding(data: bytes) -> Finding:
    return FINDING.decode(marshal.loads(data))


def dump_ref(ref) -> bytes:
    """A :class:`claimscrub.store.ClaimRef` as a plain tuple."""
    return marshal.dumps((
        ref.file, ref.index, ref.claim_id, ref.pos, ref.last_pos, decimal_in(ref.charge),
        tuple((number, decimal_in(amount)) for number, amount in ref.line_allowed.items()),
        tuple((number, decimal_in(amount)) for number, amount in ref.unpriced_charge.items()),
        ref.file_index,
    ))


def load_ref(data: bytes):
    from claimscrub.store import ClaimRef

    file, index, claim_id, pos, last_pos, charge, allowed, unpriced, file_index = marshal.loads(data)
    return ClaimRef(
        file, index, claim_id, pos, last_pos, decimal_out(charge),
        line_allowed={number: decimal_out(amount) for number, amount in allowed},
        unpriced_charge={number: decimal_out(amount) for number, amount in unpriced},
        file_index=file_index,
    )
