"""schemathesis hooks for bench/fuzz_bench.py (loaded by schemathesis through SCHEMATHESIS_HOOKS, in its own venv).

The Engine API document gives ``POST /images/load`` an ``application/x-tar`` body, for which schemathesis has
no serializer: without one that operation is never sent. Its generated body is binary, so the octet-stream
serializer sends it as it is (the daemon reads whatever arrives as an image archive)."""

import schemathesis

schemathesis.serializer.alias("application/x-tar", "application/octet-stream")
