"""Bytes <-> structures, without executing anything.

``cairn.format`` detects and reads checkpoint file formats, writes safetensors, and hashes files (and
remembers which files it hashed: :mod:`cairn.format.statcache`, used by saves, loads and pulls). It is the
bottom layer: it imports only the standard library, numpy and safetensors, never torch at import time,
and never unpickles. Parsers check every limit before they allocate and raise
:class:`cairn.errors.FormatError` subclasses that name the file and what is wrong.
"""
