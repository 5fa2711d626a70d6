"""`dockyard registry serve`: an OCI distribution registry on dockyard's verified content store.

It runs as its own process (gunicorn's threaded workers around a WSGI app of ours, see docs/architecture.md);
the engine's CLI only dispatches to :mod:`.cli`. Modules: ``protocol`` (names, digests, media types),
``errors`` (the spec's error codes and their statuses), ``store`` (repositories, manifests, uploads on disk),
``app`` (the HTTP endpoints), ``auth`` (htpasswd, Bearer tokens), ``ratelimit``, ``proxy`` (pull-through),
``config`` (flags and config.yml), ``gc``.
"""
