"""tickpath.bench"""
