"""The loop that joins the farm and the trainer: ``farm add-device``, ``farm report`` and ``make demo``.

``farm`` measures, ``trainer`` learns; neither imports this package (a test
checks it). ``loop.cli`` is the ``farm`` console script: farm's own parser
plus the subcommands that need both halves.
"""
