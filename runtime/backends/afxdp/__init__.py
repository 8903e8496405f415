"""AF_XDP receive backend: layout, bpf, attach, socket, poll (hot path), backend (registry)."""
