"""The governed REST API: system, process and experience APIs with auth and versioning."""
