"""Structure-aware mutation of DER messages: a TLV tree, broken one rule at a time.

A valid message (an ES10 request, an ES9+ object) is read into a tree of
`Node`s by a walker of our own, bounded in depth and node count (ITU-T X.690
§8.1: tag, length, contents; a constructed value is a series of data objects).
A mutation changes one node of the tree and the tree is written back, every
length recomputed unless the mutation is about that length. The kinds, each
what a decoder must refuse or survive (`KINDS`):

| kind              | what it does                                                         |
|-------------------|----------------------------------------------------------------------|
| empty             | a constructed value with no children (empty SET OF / SEQUENCE OF)    |
| zero-length       | a primitive value of no bytes                                        |
| long-length       | a length field claiming more bytes than follow (by 1, 127, 2**32-1)  |
| short-length      | a length field claiming fewer bytes than follow                      |
| indefinite        | the indefinite form: 80, the contents, end-of-contents 00 00         |
| nonminimal-length | a definite length in a longer form than DER allows (81 05, 84 ...)   |
| wrong-tag         | a neighbouring tag, the other form, another class, a universal one   |
| truncate          | the message cut inside this node (parents keep their lengths), or    |
|                   | the node's own encoding cut (parents' lengths follow)                |
| duplicate         | one child repeated, up to thousands of times                         |
| reinsert          | a subtree of the message inserted as a child (nesting, recursion)    |
| delete            | one child removed                                                    |
| swap              | two children exchanged                                               |
| junk              | bytes inserted among the children: 00, 00 00 (end-of-contents), FF,  |
|                   | an empty SET or SEQUENCE, a NULL                                     |
| value             | a primitive value changed: bit flip, boundary bytes, longer, shorter |
| nest              | a node wrapped in a constructed node, several levels deep            |

Everything here is bytes in, bytes out; nothing decoded is ever executed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from card.tlv import TlvError, decode_length, decode_tag, encode_length

#: The deepest tree the walker builds; deeper values stay primitive bytes.
MAX_DEPTH = 24
#: The most nodes the walker builds from one message.
MAX_NODES = 4096
#: The largest message a mutation may produce (bytes), unless told otherwise.
MAX_SIZE = 60_000

#: Counts a duplicated child reaches ("huge counts" stop at the size bound).
DUPLICATE_COUNTS = (2, 3, 16, 127, 128, 255, 256, 1000, 5000, 20000)
#: Bytes inserted among the children of a constructed value.
JUNK = (
    b"\x00",
    b"\x00\x00",
    b"\x00\x00\x00",
    b"\xff",
    b"\x05\x00",
    b"\x30\x00",
    b"\x31\x00",
    b"\x04\x00",
    b"\xa0\x00",
    b"\x80",
    b"\x1f",
    b"\x30\x80\x00\x00",
)
#: Universal tags a node may be given instead of its own.
UNIVERSAL_TAGS = (b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\x06", b"\x0c", b"\x30", b"\x31")


@dataclass
class Node:
    """One data object of a tree, or raw bytes written as they are.

    Attributes:
        tag: the tag field's bytes (empty for raw bytes).
        value: a primitive's contents, or the raw bytes of a raw node.
        children: a constructed value's data objects (None: primitive or raw).
        length: a length field written instead of the right one (None: shortest form).
        indefinite: written in the indefinite form, 80 ... 00 00.
        cut: write only this many bytes of the node's encoding.
    """

    tag: bytes
    value: bytes = b""
    children: list[Node] | None = None
    length: bytes | None = None
    indefinite: bool = False
    cut: int | None = None

    @property
    def raw(self) -> bool:
        return not self.tag

    @property
    def constructed(self) -> bool:
        return self.children is not None

    def copy(self) -> Node:
        return Node(
            self.tag,
            self.value,
            None if self.children is None else [c.copy() for c in self.children],
            self.length,
            self.indefinite,
            self.cut,
        )

    def encode(self) -> bytes:
        """The node's bytes, with its length field (or its override) in front."""
        if self.raw:
            out = self.value
        else:
            content = (
                self.value if self.children is None else b"".join(c.encode() for c in self.children)
            )
            if self.indefinite:
                out = self.tag + b"\x80" + content + b"\x00\x00"
            else:
                n = self.length if self.length is not None else encode_length(len(content))
                out = self.tag + n + content
        return out if self.cut is None else out[: self.cut]

    def count(self) -> int:
        return 1 + sum(c.count() for c in self.children or ())


def raw(data: bytes) -> Node:
    return Node(b"", data)


# -- reading ------------------------------------------------------------------------------------


def parse(data: bytes, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> Node:
    """Read one DER data object into a tree (constructed values whose contents do not
    parse, or lie too deep, stay primitive bytes).

    Raises:
        ValueError: `data` is not exactly one data object.
    """
    budget = [max_nodes]
    try:
        nodes = _parse_series(bytes(data), 0, len(data), 0, max_depth, budget)
    except TlvError as e:
        raise ValueError(f"not DER: {e}") from None
    if len(nodes) != 1:
        raise ValueError(f"{len(nodes)} data objects, not one")
    return nodes[0]


def _parse_series(
    data: bytes, pos: int, end: int, depth: int, max_depth: int, budget: list[int]
) -> list[Node]:
    out: list[Node] = []
    while pos < end:
        tag_end = decode_tag(data, pos)[1]
        if tag_end > end:
            raise TlvError("tag runs past its parent", pos)
        n, vpos = decode_length(data[:end], tag_end)
        vend = vpos + n
        if vend > end:
            raise TlvError("length runs past its parent", tag_end)
        budget[0] -= 1
        if budget[0] < 0:
            raise TlvError("too many data objects", pos)
        node = Node(data[pos:tag_end], data[vpos:vend])
        if data[pos] & 0x20 and depth < max_depth:
            saved = budget[0]
            try:
                node.children = _parse_series(data, vpos, vend, depth + 1, max_depth, budget)
                node.value = b""
            except TlvError:
                budget[0] = saved
        out.append(node)
        pos = vend
    return out


def walk(node: Node, path: tuple[int, ...] = ()) -> Iterator[tuple[tuple[int, ...], Node]]:
    """Every node with its path (child indices from the root), depth first."""
    yield path, node
    for i, c in enumerate(node.children or ()):
        yield from walk(c, (*path, i))


def _live(node: Node, path: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], Node]]:
    """Nodes whose bytes are all written (none inside a node cut short)."""
    if node.cut is not None:
        return
    yield path, node
    for i, c in enumerate(node.children or ()):
        yield from _live(c, (*path, i))


def at(root: Node, path: tuple[int, ...]) -> Node:
    node = root
    for i in path:
        assert node.children is not None
        node = node.children[i]
    return node


def offsets(root: Node) -> dict[tuple[int, ...], tuple[int, int]]:
    """(start, end) of every node's encoding within the root's encoding."""
    out: dict[tuple[int, ...], tuple[int, int]] = {}

    def go(node: Node, path: tuple[int, ...], start: int) -> int:
        enc = node.encode()
        out[path] = (start, start + len(enc))
        if node.children is not None and node.cut is None and not node.raw:
            head = len(node.tag) + (
                1 if node.indefinite else len(node.length or encode_length(_content_len(node)))
            )
            p = start + head
            for i, c in enumerate(node.children):
                p = go(c, (*path, i), p)
        return start + len(enc)

    go(root, (), 0)
    return out


def _content_len(node: Node) -> int:
    return sum(len(c.encode()) for c in node.children or ())


# -- mutating -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """What one mutation did: its kind, the node's path, and a few words."""

    kind: str
    path: tuple[int, ...]
    detail: str = ""

    def __str__(self) -> str:
        where = ".".join(map(str, self.path)) or "root"
        return f"{self.kind}@{where}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Mutated:
    """A mutated message: its bytes and the mutations applied, in order."""

    data: bytes
    mutations: list[Mutation] = field(default_factory=list)

    def describe(self) -> str:
        return ", ".join(map(str, self.mutations))


#: A mutation: (root, path, the node at path, rng, the bytes the message may still grow)
#: -> a few words on what it did, or None when it does not fit the node (nothing changed).
Op = Callable[[Node, tuple[int, ...], Node, random.Random, int], str | None]


def _neighbour_tag(tag: bytes, rng: random.Random) -> bytes:
    t = bytearray(tag)
    r = rng.random()
    if r < 0.3:  # the other form (primitive <-> constructed)
        t[0] ^= 0x20
    elif r < 0.5:  # another class
        t[0] = (t[0] & 0x3F) | (rng.randrange(4) << 6)
    elif len(t) == 1 and (t[0] & 0x1F) not in (0x00, 0x1E):
        t[0] = (t[0] & 0xE0) | ((t[0] & 0x1F) + rng.choice((-1, 1)))
    elif len(t) > 1:
        last = t[-1]
        t[-1] = max(0, min(0x7F, last + rng.choice((-1, 1))))
    else:
        t[0] ^= 0x01
    out = bytes(t)
    if len(out) == 1 and out[0] & 0x1F == 0x1F:  # would announce more tag bytes
        out += b"\x01"
    return out


def op_empty(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if node.children is None or not node.children:
        return None
    n = len(node.children)
    node.children = []
    return f"{n} children removed"


def op_zero_length(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if node.raw or node.children is not None or not node.value:
        return None
    node.value = b""
    return "value emptied"


def op_long_length(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if node.raw:
        return None
    n = _payload(node)
    claim = rng.choice((n + 1, n + 2, n + 127, 0x7F, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF))
    node.length = encode_length(max(claim, n + 1))
    return f"length {n} -> {max(claim, n + 1)}"


def op_short_length(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    n = _payload(node)
    if node.raw or n == 0:
        return None
    claim = rng.choice((0, n - 1, n // 2, 1))
    claim = min(claim, n - 1)
    node.length = encode_length(claim)
    return f"length {n} -> {claim}"


def op_indefinite(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if node.raw or node.indefinite:
        return None
    node.indefinite = True
    return "80 ... 00 00"


def op_nonminimal(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if node.raw:
        return None
    n = _payload(node)
    k = rng.choice((1, 2, 3, 4))
    if n >= 1 << (8 * k):
        k = 4
    if k == 1 and n < 0x80:
        node.length = bytes((0x81, n))
    else:
        node.length = bytes((0x80 | k,)) + n.to_bytes(k, "big")
    return node.length.hex()


def op_wrong_tag(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if node.raw:
        return None
    old = node.tag
    r = rng.random()
    if r < 0.45:
        node.tag = _neighbour_tag(old, rng)
    elif r < 0.7:
        node.tag = rng.choice(UNIVERSAL_TAGS)
    elif r < 0.9:
        tags = [n.tag for _, n in walk(root) if n.tag and n.tag != old]
        node.tag = rng.choice(tags) if tags else _neighbour_tag(old, rng)
    else:
        node.tag = rng.choice((b"\x00", b"\x1f\x81\x80\x01", b"\xbf\x7f", b"\xff"))
    return f"{old.hex()} -> {node.tag.hex()}"


def op_truncate(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    size = len(node.encode())
    if size <= 1:
        return None
    k = rng.choice((1, len(node.tag), len(node.tag) + 1, rng.randrange(1, size), size - 1))
    k = max(1, min(k, size - 1))
    if rng.random() < 0.5 or not path:
        # The whole message cut here: every enclosing length now runs past the end.
        where = offsets(root).get(path)
        if where is None:
            return None
        return f"@{where[0] + k}" if _cut_message(root, where[0] + k) else None
    node.cut = k
    return f"node cut to {k} of {size}"


def _cut_message(root: Node, at_byte: int) -> bool:
    root.cut = at_byte
    return True


def op_duplicate(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if not node.children:
        return None
    i = rng.randrange(len(node.children))
    child = node.children[i]
    size = max(1, len(child.encode()))
    fits = max(0, room) // size
    want = rng.choice(DUPLICATE_COUNTS)
    extra = min(want - 1, fits)
    if extra <= 0:
        return None
    node.children[i + 1 : i + 1] = [child.copy() for _ in range(extra)]
    return f"child {i} x{extra + 1}"


def op_reinsert(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if node.children is None:
        return None
    donors = [n for _, n in walk(root) if not n.raw]
    donor = rng.choice(donors).copy()
    donor.cut = None
    if len(donor.encode()) > room:
        return None
    i = rng.randrange(len(node.children) + 1)
    node.children.insert(i, donor)
    return f"{donor.tag.hex()} inserted at {i}"


def op_delete(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if not node.children:
        return None
    i = rng.randrange(len(node.children))
    del node.children[i]
    return f"child {i}"


def op_swap(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if not node.children or len(node.children) < 2:
        return None
    i, j = rng.sample(range(len(node.children)), 2)
    node.children[i], node.children[j] = node.children[j], node.children[i]
    return f"children {i}, {j}"


def op_junk(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if node.children is None:
        return None
    junk = rng.choice(JUNK) if rng.random() < 0.85 else rng.randbytes(rng.randrange(1, 5))
    where = rng.choice(
        (len(node.children), len(node.children), 0, rng.randrange(len(node.children) + 1))
    )
    node.children.insert(where, raw(junk))
    return f"{junk.hex()} at {where}"


_INTERESTING = (b"\x00", b"\xff", b"\x80", b"\x7f", b"\x01", b"\x00\x00", b"\xff\xff\xff\xff")


def op_value(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if node.children is not None:
        return None
    v = bytearray(node.value)
    r = rng.random()
    if r < 0.3 and v:
        i = rng.randrange(len(v))
        v[i] ^= 1 << rng.randrange(8)
        what = f"bit flipped at {i}"
    elif r < 0.5:
        v = bytearray(rng.choice(_INTERESTING))
        what = f"= {v.hex()}"
    elif r < 0.7 and v:
        v = v[: rng.randrange(len(v))]
        what = f"cut to {len(v)}"
    else:
        n = rng.choice((1, 16, 127, 128, 256, 1000))
        n = min(n, max(0, room))
        v += (bytes(v) or b"\x00") * (n // max(1, len(v)) + 1)
        v = v[: len(node.value) + n]
        what = f"longer by {n}"
    node.value = bytes(v)
    return what


def op_nest(
    root: Node, path: tuple[int, ...], node: Node, rng: random.Random, room: int
) -> str | None:
    if node.raw or not path:
        return None
    parent = at(root, path[:-1])
    assert parent.children is not None
    depth = rng.choice((1, 2, 8, 64))
    wrapper = node.tag if node.children is not None else rng.choice((b"\x30", b"\x31", b"\xa0"))
    if depth * (len(wrapper) + 5) > room:
        return None
    inner = node
    for _ in range(depth):
        inner = Node(wrapper, children=[inner])
    parent.children[path[-1]] = inner
    return f"{depth} x {wrapper.hex()}"


def _payload(node: Node) -> int:
    if node.children is None:
        return len(node.value)
    return _content_len(node)


#: The mutation kinds, by name (see the module docstring).
KINDS: dict[str, Op] = {
    "empty": op_empty,
    "zero-length": op_zero_length,
    "long-length": op_long_length,
    "short-length": op_short_length,
    "indefinite": op_indefinite,
    "nonminimal-length": op_nonminimal,
    "wrong-tag": op_wrong_tag,
    "truncate": op_truncate,
    "duplicate": op_duplicate,
    "reinsert": op_reinsert,
    "delete": op_delete,
    "swap": op_swap,
    "junk": op_junk,
    "value": op_value,
    "nest": op_nest,
}
#: How often each kind is drawn (the structural ones more than value changes).
WEIGHTS: dict[str, float] = {
    "empty": 2,
    "zero-length": 1.5,
    "long-length": 1,
    "short-length": 1,
    "indefinite": 1,
    "nonminimal-length": 0.5,
    "wrong-tag": 1.5,
    "truncate": 1,
    "duplicate": 1.5,
    "reinsert": 1,
    "delete": 1.5,
    "swap": 0.5,
    "junk": 2,
    "value": 1.5,
    "nest": 0.5,
}


def apply(
    root: Node, kind: str, rng: random.Random, *, max_size: int = MAX_SIZE
) -> Mutation | None:
    """Apply one mutation of `kind` to a random node it fits (the tree changes in place).

    Returns:
        What was done, or None if no node of the tree fits the kind.
    """
    op = KINDS[kind]
    room = max_size - len(root.encode())
    nodes = [(p, n) for p, n in _live(root, ())]
    rng.shuffle(nodes)
    for path, node in nodes[:16]:
        detail = op(root, path, node, rng, room)
        if detail is not None:
            return Mutation(kind, path, detail)
    return None


def mutate(
    data: bytes | Node,
    rng: random.Random,
    *,
    rounds: int | None = None,
    kinds: tuple[str, ...] | None = None,
    max_size: int = MAX_SIZE,
) -> Mutated:
    """A mutated copy of a DER message: 1-3 mutations (or `rounds`) of the kinds given.

    Raises:
        ValueError: `data` is not one DER data object.
    """
    root = parse(data) if isinstance(data, bytes) else data.copy()
    names = list(kinds or KINDS)
    weights = [WEIGHTS.get(k, 1.0) for k in names]
    out: list[Mutation] = []
    for _ in range(rounds if rounds is not None else rng.choice((1, 1, 2, 2, 3))):
        if root.cut is not None:
            break  # nothing follows a message cut short
        m = apply(root, rng.choices(names, weights)[0], rng, max_size=max_size)
        if m is not None:
            out.append(m)
    return Mutated(root.encode(), out)
