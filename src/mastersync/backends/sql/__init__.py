"""What the SQLite and PostgreSQL stores share: tables, migrations, queries."""
