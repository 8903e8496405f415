"""tickpath.hostconfig: topology discovery, host tuning audit, apply with rollback, jitter.

Modules: sysfs (rooted reads/writes, Unknown), cpulist (kernel CPU list/mask formats),
topology (discover, choose_cores — shared with `tickpath info`), plan (the runtime config
keys hostconfig reads), checks_base / checks_host / checks_plan / checks_nic (the checks as
data), nic (pyroute2 ethtool ops), apply (apply + rollback), jitter (hiccups-style
measurement), cli (`tickpath host ...` subcommands).
"""
