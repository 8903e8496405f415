"""Backtests: recorded ITCH through a simulated exchange with latency and queue models, the same strategy code as tickpath trade."""
