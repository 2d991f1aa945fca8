"""Generic SQL connector: any SQLAlchemy URL, incremental reads, upserts out."""
