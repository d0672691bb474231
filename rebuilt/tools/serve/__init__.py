"""Serving: profiles of sglang servers (prefill, decode, router or one server) started,
watched, smoke-tested and stopped by ``inv serve.*`` (docs/SERVE.md)."""
