"""Co-simulation and synthesis of the parser's RTL (fpga/rtl/).

* `gen_include`: writes the Verilog includes the RTL reads - the register map from
  `fpga/regmap.py`, the ITCH field ROM from `fpga/emulator/rom.py` and the event offsets
  from `runtime/core/event.py` - so no offset or table is written twice.
* `cosim`: runs a stimulus (packets, register writes, output holds) through the RTL on
  Icarus Verilog or Verilator and reads back the records, register file and cycle stamps.
* `synth`: the Yosys synthesis report (LUT/FF/BRAM, longest path).
"""
