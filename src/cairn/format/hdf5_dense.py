"""The links of an HDF5 group in dense storage: a v2 B-tree name index over a fractal heap.

h5py writes a group this way when it has more links than fit its compact form (8 by default) in files
made with ``libver="latest"``. The group's Link Info message gives two addresses: the fractal heap
(``FRHP``) that holds each link message as a heap object, and the v2 B-tree (``BTHD``, nodes ``BTIN`` /
``BTLF``) whose type-5 records (name hash, heap ID) index them. Reading: walk the B-tree for heap IDs →
map each ID's offset into the heap's doubling table of direct blocks (``FHDB``, reached through the root
indirect block ``FHIB``) → parse the link message there. Subset: managed heap objects, a root that is a
direct block or a tree of indirect blocks; huge and tiny objects and I/O filters on the heap are refused
(reported as a warning: the group's members are then not listed).

Every node and block is checked against the file (through ``_File.read``), visited at most once, and
counted against the reader's object limit; B-tree depth, node sizes, record counts and heap geometry are
checked before they are used.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from cairn.errors import FormatError, LimitExceededError, UnsupportedFormatError

if TYPE_CHECKING:
    from cairn.format.hdf5 import _File

__all__ = ["dense_links"]

MAX_BTREE_DEPTH = 16
_PREFIX = 10  # signature, version, type and checksum of every v2 B-tree node


def _enc_size(value: int) -> int:
    """Bytes HDF5 uses to store a count up to ``value`` (``H5VM_limit_enc_size``)."""
    return (max(value, 1).bit_length() - 1) // 8 + 1


class _Heap:
    """The fractal heap's geometry, and its direct blocks by heap offset."""

    def __init__(self, h5: _File, addr: int) -> None:
        self.h5 = h5
        head = h5.read(addr, 146, "fractal heap header")
        if head[:4] != b"FRHP" or head[4] != 0:
            raise FormatError(f"HDF5 fractal heap at {addr} is malformed", path=h5.path)
        self.id_len, filters, self.flags = h5.u(head, 5, 2), h5.u(head, 7, 2), head[9]
        if filters:
            raise UnsupportedFormatError("HDF5 fractal heap with I/O filters", path=h5.path)
        self.width, self.start = h5.u(head, 110, 2), h5.u(head, 112, 8)
        self.max_direct, max_heap_bits = h5.u(head, 120, 8), h5.u(head, 128, 2)
        self.root, self.rows = h5.u(head, 132, 8), h5.u(head, 140, 2)
        max_managed = h5.u(head, 10, 4)
        ok = 0 < self.width <= 4096 and 0 < max_heap_bits <= 64 and self.rows <= 64
        ok = (
            ok
            and _power_of_two(self.start)
            and _power_of_two(self.max_direct)
            and self.start <= self.max_direct
        )
        if not ok:
            raise FormatError(f"HDF5 fractal heap at {addr} has an impossible geometry", path=h5.path)
        self.offset_size = (max_heap_bits + 7) // 8
        # as H5HF__hdr_finish_init: the smaller of the bytes of a direct block offset and of the largest object
        self.length_size = min((self.max_direct.bit_length() - 1 + 7) // 8, _enc_size(max_managed))
        self.blocks: list[tuple[int, int, int]] | None = None  # (heap offset, size, file address)
        self.starts: list[int] | None = None
        self.checked: set[int] = set()

    def _block_list(self) -> list[tuple[int, int, int]]:
        if self.blocks is None:
            self.blocks = []
            if self.rows == 0:  # the root is one direct block
                self.blocks.append((0, self.start, self.h5.base + self.root))
            else:
                self._indirect(self.root, 0, self.rows, set())
        return self.blocks

    def _indirect(self, addr: int, offset: int, rows: int, seen: set[int]) -> None:
        """Collect the direct blocks under the indirect block at ``addr`` covering heap ``offset`` on;
        rows past the direct ones hold smaller indirect blocks (``H5HF__dtable_size_to_rows``)."""
        h5 = self.h5
        if addr in seen or len(seen) > 100_000:
            raise FormatError(f"HDF5 fractal heap indirect block at {addr} is reached twice", path=h5.path)
        seen.add(addr)
        direct_rows = (self.max_direct.bit_length() - self.start.bit_length()) + 2
        first_row_bits = self.start.bit_length() - 1 + self.width.bit_length() - 1
        head = h5.read(h5.base + addr, 5 + 8 + self.offset_size + 8 * rows * self.width, "fractal heap block")
        if head[:4] != b"FHIB":
            raise FormatError(f"HDF5 fractal heap indirect block at {addr} is malformed", path=h5.path)
        at = 5 + 8 + self.offset_size
        for row in range(rows):
            size = self.start if row < 2 else self.start << (row - 1)
            for _ in range(self.width):
                child = h5.u(head, at, 8)
                at += 8
                if child != 0xFFFFFFFFFFFFFFFF:
                    if row < direct_rows:
                        self.blocks_add(offset, size, h5.base + child)
                    else:
                        child_rows = size.bit_length() - 1 - first_row_bits + 1
                        if not 0 < child_rows < rows:
                            raise FormatError(f"HDF5 fractal heap block at {child} has no rows", path=h5.path)
                        self._indirect(child, offset, child_rows, seen)
                offset += size

    def blocks_add(self, offset: int, size: int, addr: int) -> None:
        assert self.blocks is not None
        self.blocks.append((offset, size, addr))
        if len(self.blocks) > 1_000_000:
            raise LimitExceededError("HDF5 fractal heap has too many blocks", path=self.h5.path)

    def object(self, heap_id: bytes) -> bytes:
        """The bytes of the managed object ``heap_id`` names."""
        h5 = self.h5
        if len(heap_id) < 1 + self.offset_size + self.length_size or heap_id[0] & 0x30:
            raise UnsupportedFormatError("HDF5 heap ID of a huge or tiny object", path=h5.path)
        offset = h5.u(heap_id, 1, self.offset_size)
        length = h5.u(heap_id, 1 + self.offset_size, self.length_size)
        blocks = self._block_list()
        if self.starts is None:
            self.starts = [b[0] for b in blocks]  # in heap order: the doubling table is walked in order
        i = bisect.bisect_right(self.starts, offset) - 1
        if i < 0 or offset >= blocks[i][0] + blocks[i][1]:
            raise FormatError(f"HDF5 heap object at {offset} is in no block of its heap", path=h5.path)
        start, size, addr = blocks[i]
        if offset + length > start + size:
            raise FormatError(f"HDF5 heap object at {offset} runs past its block", path=h5.path)
        if addr not in self.checked:
            if h5.read(addr, 4, "fractal heap direct block") != b"FHDB":
                raise FormatError(f"HDF5 fractal heap direct block at {addr} is malformed", path=h5.path)
            self.checked.add(addr)
        return h5.read(addr + offset - start, length, "link message")


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class _NameIndex:
    """The v2 B-tree of a dense group's names: its records are (hash, heap ID)."""

    def __init__(self, h5: _File, addr: int) -> None:
        self.h5 = h5
        head = h5.read(addr, 38, "v2 B-tree header")
        if head[:4] != b"BTHD" or head[4] != 0 or head[5] != 5:
            raise FormatError(f"HDF5 v2 B-tree at {addr} is not a link name index", path=h5.path)
        self.node_size, self.rec_size, self.depth = h5.u(head, 6, 4), h5.u(head, 10, 2), h5.u(head, 12, 2)
        self.root, self.root_count = h5.u(head, 16, 8), h5.u(head, 24, 2)
        if (
            self.depth > MAX_BTREE_DEPTH
            or not 5 <= self.rec_size <= 64
            or not 64 <= self.node_size <= 1 << 20
        ):
            raise FormatError(f"HDF5 v2 B-tree at {addr} has an impossible geometry", path=h5.path)
        # the per-depth record limits and field widths HDF5 derives from the node size (H5B2__hdr_init)
        leaf_max = (self.node_size - _PREFIX) // self.rec_size
        self.count_size = _enc_size(leaf_max)
        self.max_records, self.cum_max, self.cum_size = [leaf_max], [leaf_max], [0]
        for d in range(1, self.depth + 1):
            pointer = self._pointer_size(d)
            records = (self.node_size - _PREFIX - pointer) // (self.rec_size + pointer)
            if records < 1:
                raise FormatError(f"HDF5 v2 B-tree at {addr} has nodes too small", path=h5.path)
            self.max_records.append(records)
            self.cum_max.append((records + 1) * self.cum_max[d - 1] + records)
            self.cum_size.append(_enc_size(self.cum_max[d]))
        self.seen: set[int] = set()

    def _pointer_size(self, depth: int) -> int:
        return 8 + self.count_size + (self.cum_size[depth - 1] if depth > 1 else 0)

    def records(self) -> list[bytes]:
        out: list[bytes] = []
        if self.root != 0xFFFFFFFFFFFFFFFF and self.root_count:
            self._node(self.root, self.root_count, self.depth, out)
        return out

    def _node(self, addr: int, count: int, depth: int, out: list[bytes]) -> None:
        h5 = self.h5
        if addr in self.seen:
            raise FormatError(f"HDF5 v2 B-tree node at {addr} is reached twice", path=h5.path)
        self.seen.add(addr)
        h5.nodes += 1 + count
        if h5.nodes > 1_000_000:
            raise LimitExceededError("HDF5 link name index is too large", path=h5.path)
        if count > self.max_records[depth]:
            raise FormatError(f"HDF5 v2 B-tree node at {addr} claims {count} records", path=h5.path)
        body = h5.read(h5.base + addr, self.node_size, "v2 B-tree node")
        if body[:4] != (b"BTLF" if depth == 0 else b"BTIN"):
            raise FormatError(f"HDF5 v2 B-tree node at {addr} has the wrong signature", path=h5.path)
        at = 6
        out += [body[at + i * self.rec_size : at + (i + 1) * self.rec_size] for i in range(count)]
        if depth == 0:
            return
        at += count * self.rec_size
        for _ in range(count + 1):
            child, child_count = h5.u(body, at, 8), h5.u(body, at + 8, self.count_size)
            at += self._pointer_size(depth)
            self._node(child, child_count, depth - 1, out)


def dense_links(h5: _File, heap_addr: int, index_addr: int) -> list[tuple[str, int]]:
    """(name, object header address) of every hard link in a dense group (soft/external links skipped)."""
    from cairn.format.hdf5 import _Object

    heap = _Heap(h5, h5.base + heap_addr)
    index = _NameIndex(h5, h5.base + index_addr)
    holder = _Object()
    for record in index.records():
        h5._link(heap.object(record[4 : 4 + heap.id_len]), holder)
    return holder.links or []
