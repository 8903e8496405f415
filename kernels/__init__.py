"""tickpath.kernels"""
