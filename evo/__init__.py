"""The search engine, its run logs and the ``evo`` command line."""
