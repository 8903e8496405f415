"""The audit log of every order's life: layout.py (header + 80-byte record), writer.py (the hot
thread's audit_write_* into an SPSC ring), log.py (AuditLog: the writer thread, append-only
file), reader.py (read_records, verify), cli.py (`tickpath audit verify|export`)."""
