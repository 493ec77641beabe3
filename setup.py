"""The one compiled part of cairn, optional: ``cairn.format._fused``, the single-pass float32 kernel of
``cairn inspect --stats``. Without a C compiler the build skips it and --stats uses numpy (slower)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("cairn.format._fused", ["src/cairn/format/_fused.c"], optional=True)])
