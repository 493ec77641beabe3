"""The ``cairn`` command line: argument parsing and rendering only.

Each module in :mod:`cairn.cli.commands` adds its subcommands through ``register(subparsers)``; the modules
are discovered at start-up, so a new command is one new file. Handlers return an exit status and print
through :mod:`cairn.cli.output`, which renders either human text or ``--json``.

Exit statuses: 0 success, 1 a negative answer (verification failed, files differ, findings), 2 an error
(bad input, missing file, unusable checkpoint), 130 interrupted.
"""
