"""The `imagine-assist` command: one module per subcommand, assembled in `app.main`.

Each command module has `add_parser(subparsers)`, which declares its options, and
`run(args)`, which does the work and returns the exit status. Heavy imports stay inside
`run`, so `imagine-assist --help` and a mistyped option answer at once.
"""
