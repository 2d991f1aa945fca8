"""Generic REST connector: declarative auth, pagination, incremental reads, templated writes."""
