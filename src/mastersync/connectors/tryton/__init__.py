"""The Tryton ERP connector: JSON-RPC (or REST with an application key) over HTTP."""
