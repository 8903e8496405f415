"""tickpath.fpga"""
