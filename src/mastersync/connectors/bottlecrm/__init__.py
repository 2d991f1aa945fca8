"""The BottleCRM connector: accounts and contacts in, accounts out, over its REST API."""
