"""The trading half: strategies in the hot loop, pre-trade risk, order manager, OUCH 5.0 order entry, positions and the audit log (records.py is the contract between them)."""
