"""The pickle instruction set of protocols 0–5: opcode bytes, names and how each one's argument is encoded.

Used by :mod:`cairn.format.pickle_machine` to decode a stream without ``pickletools`` (which stops at the
first byte it does not understand). The table is checked against ``pickletools.opcodes`` in the tests.
"""

from __future__ import annotations

__all__ = ["FIXED", "LENGTH", "OPCODES"]  # and the ARG_* argument kinds

# argument kinds of the opcodes
ARG_NONE, ARG_U1, ARG_U2, ARG_I4, ARG_U4, ARG_U8, ARG_F8 = range(7)
ARG_LINE, ARG_PAIR, ARG_STR1, ARG_STR4, ARG_BYTES1, ARG_BYTES4, ARG_BYTES8, ARG_LONG1, ARG_LONG4 = range(
    7, 16
)

# opcode byte, name, argument kind: the protocol 0-5 instruction set (Lib/pickletools.py documents each)
_TABLE = """
28 MARK - 2e STOP - 30 POP - 31 POP_MARK - 32 DUP - 46 FLOAT line 49 INT line 4a BININT i4 4b BININT1 u1
4c LONG line 4d BININT2 u2 4e NONE - 50 PERSID line 51 BINPERSID - 52 REDUCE - 53 STRING line
54 BINSTRING str4 55 SHORT_BINSTRING str1 56 UNICODE line 58 BINUNICODE bytes4 61 APPEND - 62 BUILD -
63 GLOBAL pair 64 DICT - 7d EMPTY_DICT - 65 APPENDS - 67 GET line 68 BINGET u1 69 INST pair 6a LONG_BINGET u4
6c LIST - 5d EMPTY_LIST - 6f OBJ - 70 PUT line 71 BINPUT u1 72 LONG_BINPUT u4 73 SETITEM - 74 TUPLE -
29 EMPTY_TUPLE - 75 SETITEMS - 47 BINFLOAT f8 80 PROTO u1 81 NEWOBJ - 82 EXT1 u1 83 EXT2 u2 84 EXT4 i4
85 TUPLE1 - 86 TUPLE2 - 87 TUPLE3 - 88 NEWTRUE - 89 NEWFALSE - 8a LONG1 long1 8b LONG4 long4
42 BINBYTES bytes4 43 SHORT_BINBYTES bytes1 8c SHORT_BINUNICODE bytes1 8d BINUNICODE8 bytes8
8e BINBYTES8 bytes8 8f EMPTY_SET - 90 ADDITEMS - 91 FROZENSET - 92 NEWOBJ_EX - 93 STACK_GLOBAL -
94 MEMOIZE - 95 FRAME u8 96 BYTEARRAY8 bytes8 97 NEXT_BUFFER - 98 READONLY_BUFFER -
"""
_KINDS = {
    "-": ARG_NONE,
    "u1": ARG_U1,
    "u2": ARG_U2,
    "i4": ARG_I4,
    "u4": ARG_U4,
    "u8": ARG_U8,
    "f8": ARG_F8,
    "line": ARG_LINE,
}
_KINDS |= {"pair": ARG_PAIR, "str1": ARG_STR1, "str4": ARG_STR4, "bytes1": ARG_BYTES1, "bytes4": ARG_BYTES4}
_KINDS |= {"bytes8": ARG_BYTES8, "long1": ARG_LONG1, "long4": ARG_LONG4}
_WORDS = _TABLE.split()
OPCODES: dict[int, tuple[str, int]] = {
    int(_WORDS[i], 16): (_WORDS[i + 1], _KINDS[_WORDS[i + 2]]) for i in range(0, len(_WORDS), 3)
}

FIXED = {
    ARG_U1: (1, "<B"),
    ARG_U2: (2, "<H"),
    ARG_I4: (4, "<i"),
    ARG_U4: (4, "<I"),
    ARG_U8: (8, "<Q"),
    ARG_F8: (8, ">d"),
}
LENGTH = {
    ARG_STR1: (1, "<B"),
    ARG_BYTES1: (1, "<B"),
    ARG_LONG1: (1, "<B"),
    ARG_STR4: (4, "<i"),
    ARG_LONG4: (4, "<i"),
}
LENGTH |= {ARG_BYTES4: (4, "<I"), ARG_BYTES8: (8, "<Q")}
