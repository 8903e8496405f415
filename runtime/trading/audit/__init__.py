"""The audit log: fixed CRC-checked records of every order's life, written off the hot thread."""
