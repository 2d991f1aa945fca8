"""Akeneo PIM connector: products in the standard format over the REST API, changes from
the Event Platform."""
