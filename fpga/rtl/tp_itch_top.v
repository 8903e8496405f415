// tp_itch_top: the tickpath FPGA parser - what sits between the card's UDP front end and
// its XDMA engine: ingress AXI4-Stream (64-bit UDP payloads, sideband in tuser, see
// tp_parser.v) -> parser core -> record FIFO -> C2H AXI4-Stream (512-bit, one 64-byte event
// record per beat, tlast after a packet's last record), and the AXI4-Lite register file
// (the user BAR) at the offsets of fpga/regmap.py. One clock domain (the design targets
// 250 MHz, the XDMA user clock of an Alveo U250 shell); synchronous active-high reset.
//
// Modelled by fpga/emulator/ (datapath.py: tp_parser + tp_record_fifo; model.py: tp_regfile's
// COMMAND/STATUS handling) and checked against it and runtime/feed/decoder.py by the
// co-simulation in tests/fpga/rtl/.
`timescale 1ns / 1ps
`default_nettype none

module tp_itch_top #(
    parameter integer FIFO_DEPTH = 4096,
    parameter integer FIFO_AW = 12,         // log2(FIFO_DEPTH)
    parameter integer NS_PER_CYCLE = 4
) (
    input  wire         clk,
    input  wire         rst,
    // ingress
    input  wire [63:0]  s_axis_tdata,
    input  wire [7:0]   s_axis_tkeep,
    input  wire         s_axis_tvalid,
    input  wire         s_axis_tlast,
    input  wire [96:0]  s_axis_tuser,
    output wire         s_axis_tready,
    // C2H records
    output wire [511:0] m_axis_tdata,
    output wire         m_axis_tvalid,
    output wire         m_axis_tlast,
    input  wire         m_axis_tready,
    // register file
    input  wire [13:0]  s_axil_awaddr,
    input  wire         s_axil_awvalid,
    output wire         s_axil_awready,
    input  wire [31:0]  s_axil_wdata,
    input  wire [3:0]   s_axil_wstrb,
    input  wire         s_axil_wvalid,
    output wire         s_axil_wready,
    output wire [1:0]   s_axil_bresp,
    output wire         s_axil_bvalid,
    input  wire         s_axil_bready,
    input  wire [13:0]  s_axil_araddr,
    input  wire         s_axil_arvalid,
    output wire         s_axil_arready,
    output wire [31:0]  s_axil_rdata,
    output wire [1:0]   s_axil_rresp,
    output wire         s_axil_rvalid,
    input  wire         s_axil_rready,
    // from the front end
    input  wire         link_up,
    input  wire         input_done,
    input  wire         ingress_overrun
);
    localparam integer LEVEL_W = FIFO_AW + 1;

    wire [31:0] control, udp_port;
    wire [2:0] command;
    wire command_done;
    wire [10:0] bm_addr;
    wire [31:0] bm_word;
    wire rec_write, rec_last, rec_mark_last;
    wire [511:0] rec_data;
    wire [LEVEL_W-1:0] fifo_level;
    wire take;
    wire overflow, locked;
    wire [79:0] session;
    wire [63:0] expected;
    wire [31:0] high_water;
    wire [64*23-1:0] counters_flat;

    tp_parser #(.FIFO_DEPTH(FIFO_DEPTH), .LEVEL_W(LEVEL_W)) parser (
        .clk(clk), .rst(rst),
        .s_tdata(s_axis_tdata), .s_tkeep(s_axis_tkeep), .s_tvalid(s_axis_tvalid),
        .s_tlast(s_axis_tlast), .s_tuser(s_axis_tuser), .s_tready(s_axis_tready),
        .control(control), .udp_port(udp_port), .command(command),
        .command_done(command_done), .overrun(ingress_overrun),
        .bm_addr(bm_addr), .bm_word(bm_word),
        .rec_write(rec_write), .rec_data(rec_data), .rec_last(rec_last),
        .rec_mark_last(rec_mark_last), .fifo_level(fifo_level), .c2h_take(take),
        .overflow(overflow), .locked(locked), .session(session), .expected(expected),
        .high_water(high_water), .counters_flat(counters_flat));

    tp_record_fifo #(.DEPTH(FIFO_DEPTH), .AW(FIFO_AW), .LEVEL_W(LEVEL_W)) fifo (
        .clk(clk), .rst(rst), .wr(rec_write), .wdata(rec_data), .wlast(rec_last),
        .mark_last(rec_mark_last), .level(fifo_level), .m_tvalid(m_axis_tvalid),
        .m_tdata(m_axis_tdata), .m_tlast(m_axis_tlast), .m_tready(m_axis_tready),
        .take(take));

    tp_regfile #(.FIFO_DEPTH(FIFO_DEPTH), .LEVEL_W(LEVEL_W), .NS_PER_CYCLE(NS_PER_CYCLE)) regs (
        .clk(clk), .rst(rst),
        .s_awaddr(s_axil_awaddr), .s_awvalid(s_axil_awvalid), .s_awready(s_axil_awready),
        .s_wdata(s_axil_wdata), .s_wstrb(s_axil_wstrb), .s_wvalid(s_axil_wvalid),
        .s_wready(s_axil_wready), .s_bresp(s_axil_bresp), .s_bvalid(s_axil_bvalid),
        .s_bready(s_axil_bready), .s_araddr(s_axil_araddr), .s_arvalid(s_axil_arvalid),
        .s_arready(s_axil_arready), .s_rdata(s_axil_rdata), .s_rresp(s_axil_rresp),
        .s_rvalid(s_axil_rvalid), .s_rready(s_axil_rready),
        .control(control), .udp_port(udp_port), .command(command),
        .command_done(command_done), .bm_addr(bm_addr), .bm_word(bm_word),
        .link_up(link_up), .input_done(input_done), .overflow(overflow), .locked(locked),
        .session(session), .expected(expected), .fifo_level(fifo_level),
        .high_water(high_water), .counters_flat(counters_flat));
endmodule

`default_nettype wire
