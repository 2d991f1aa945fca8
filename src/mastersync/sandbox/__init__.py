"""The sandbox: a small simulated distributor estate (ERP, CRM, PIM, WMS, shop) for the
demo and the tests, each system with its own native record shapes and realistic faults."""
