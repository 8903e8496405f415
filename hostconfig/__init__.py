"""tickpath.hostconfig"""
