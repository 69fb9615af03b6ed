"""A small, independent HID report-descriptor parser for the tests (HID 1.11 §6.2.2).

It shares no code with :mod:`hid.descriptors` on purpose: the descriptor is checked by reading it
back the way a host does, then decoding real report bytes through the fields found.

Supported: short items only — Usage Page, Usage (incl. 4-byte extended usages), Usage Min/Max,
Logical Min/Max (signed), Report Size/Count, Report ID, Push/Pop, Input/Output/Feature,
Collection/End Collection. Other items are skipped after their data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

INPUT, OUTPUT, FEATURE = "input", "output", "feature"
_MAIN_KINDS = {0x8: INPUT, 0x9: OUTPUT, 0xB: FEATURE}


class DescriptorError(ValueError):
    pass


@dataclass(frozen=True)
class Field:
    """One main item: ``count`` values of ``size`` bits at ``offset`` bits into the report."""

    kind: str
    report_id: int
    offset: int
    size: int
    count: int
    usage_page: int
    usages: tuple[int, ...]  # full 32-bit usages (page << 16 | id)
    logical_min: int
    logical_max: int
    flags: int
    collections: tuple[int, ...]  # collection types, outermost first

    @property
    def constant(self) -> bool:
        return bool(self.flags & 0x01)

    @property
    def variable(self) -> bool:
        return bool(self.flags & 0x02)

    @property
    def relative(self) -> bool:
        return bool(self.flags & 0x04)

    @property
    def usage_ids(self) -> tuple[int, ...]:
        return tuple(u & 0xFFFF for u in self.usages)

    def raw(self, data: bytes, i: int) -> int:
        """The ``i``-th value, sign-extended when the logical range is signed."""
        bit = self.offset + i * self.size
        value = (int.from_bytes(data, "little") >> bit) & ((1 << self.size) - 1)
        if self.logical_min < 0 and value & (1 << (self.size - 1)):
            value -= 1 << self.size
        return value


@dataclass
class _Globals:
    usage_page: int = 0
    logical_min: int = 0
    logical_max: int = 0
    size: int = 0
    count: int = 0
    report_id: int = 0


@dataclass
class Descriptor:
    fields: list[Field] = field(default_factory=list)

    def of(self, kind: str, report_id: int = 0) -> list[Field]:
        return [f for f in self.fields if f.kind == kind and f.report_id == report_id]

    def bits(self, kind: str, report_id: int = 0) -> int:
        return sum(f.size * f.count for f in self.of(kind, report_id))

    def find(self, page: int, usage_id: int, kind: str = INPUT) -> Field:
        want = page << 16 | usage_id
        for f in self.fields:
            if f.kind == kind and want in f.usages:
                return f
        raise KeyError(f"no {kind} field with usage {page:#x}:{usage_id:#x}")

    def bit_offset(self, page: int, usage_id: int, kind: str = INPUT) -> int:
        """Where the value for one usage of a variable field starts in the report."""
        f = self.find(page, usage_id, kind)
        index = f.usages.index(page << 16 | usage_id)
        return f.offset + min(index, f.count - 1) * f.size

    def decode(self, data: bytes, kind: str = INPUT) -> dict[tuple[int, int], int | list[int]]:
        """Values keyed by (page, usage id); an array field appears under its page and its
        first usage id, as the list of non-zero selected usage ids."""
        expected = self.bits(kind) // 8
        if len(data) != expected:
            raise DescriptorError(f"report is {len(data)} bytes, descriptor says {expected}")
        out: dict[tuple[int, int], int | list[int]] = {}
        for f in self.of(kind):
            if f.constant:
                continue
            if f.variable:
                for i in range(f.count):
                    u = f.usages[min(i, len(f.usages) - 1)]
                    out[(u >> 16, u & 0xFFFF)] = f.raw(data, i)
            else:
                selected = []
                for i in range(f.count):
                    v = f.raw(data, i)
                    if f.logical_min <= v <= f.logical_max and v - f.logical_min < len(f.usages):
                        usage = f.usages[v - f.logical_min] & 0xFFFF
                        if usage:
                            selected.append(usage)
                first = f.usages[0]
                out[(first >> 16, first & 0xFFFF)] = selected
        return out


def parse(desc: bytes) -> Descriptor:
    result = Descriptor()
    g = _Globals()
    stack: list[_Globals] = []
    usages: list[int] = []
    usage_min: int | None = None
    collections: list[int] = []
    offsets: dict[tuple[str, int], int] = {}
    i = 0
    while i < len(desc):
        prefix = desc[i]
        if prefix == 0xFE:
            raise DescriptorError(f"long item at offset {i} not supported")
        size = (0, 1, 2, 4)[prefix & 0x03]
        kind = (prefix >> 2) & 0x03
        tag = prefix >> 4
        raw = desc[i + 1 : i + 1 + size]
        if len(raw) != size:
            raise DescriptorError(f"item at offset {i} truncated")
        i += 1 + size
        unsigned = int.from_bytes(raw, "little", signed=False)
        signed = int.from_bytes(raw, "little", signed=True) if size else 0
        # A 4-byte usage carries its own page; shorter ones take the current Usage Page.
        full = unsigned if size == 4 else (g.usage_page << 16) | unsigned

        if kind == 0:  # main
            if tag in _MAIN_KINDS:
                k = _MAIN_KINDS[tag]
                if usage_min is not None:
                    raise DescriptorError("Usage Minimum without Usage Maximum")
                key = (k, g.report_id)
                offset = offsets.get(key, 0)
                result.fields.append(
                    Field(
                        kind=k,
                        report_id=g.report_id,
                        offset=offset,
                        size=g.size,
                        count=g.count,
                        usage_page=g.usage_page,
                        usages=tuple(usages),
                        logical_min=g.logical_min,
                        logical_max=g.logical_max,
                        flags=unsigned,
                        collections=tuple(collections),
                    )
                )
                offsets[key] = offset + g.size * g.count
            elif tag == 0xA:
                collections.append(unsigned)
            elif tag == 0xC:
                if not collections:
                    raise DescriptorError(f"End Collection without Collection at offset {i}")
                collections.pop()
            else:
                raise DescriptorError(f"unknown main item tag {tag:#x}")
            usages = []
        elif kind == 1:  # global
            if tag == 0x0:
                g.usage_page = unsigned
            elif tag == 0x1:
                g.logical_min = signed
            elif tag == 0x2:
                g.logical_max = signed
            elif tag == 0x7:
                g.size = unsigned
            elif tag == 0x8:
                if unsigned == 0:
                    raise DescriptorError("Report ID 0 is reserved")
                g.report_id = unsigned
            elif tag == 0x9:
                g.count = unsigned
            elif tag == 0xA:
                stack.append(replace(g))
            elif tag == 0xB:
                if not stack:
                    raise DescriptorError("Pop without Push")
                g = stack.pop()
        elif kind == 2:  # local
            if tag == 0x0:
                usages.append(full)
            elif tag == 0x1:
                usage_min = full
            elif tag == 0x2:
                if usage_min is None:
                    raise DescriptorError("Usage Maximum without Usage Minimum")
                usages.extend(range(usage_min, full + 1))
                usage_min = None
        else:
            raise DescriptorError(f"reserved item type at offset {i}")
    if collections:
        raise DescriptorError(f"{len(collections)} collection(s) left open")
    return result
