// tp_regfile: the card's register file as an AXI4-Lite slave (the XDMA user BAR).
//
// Offsets, bits and counter indices come from tp_regmap.vh, generated from fpga/regmap.py
// (the single description). 32-bit data bus; a 64-bit register is two words, low word first
// (read it hi/lo/hi: regmap.read_u64_split). Access rules as regmap.py states them:
//   RO  identity, geometry, STATUS, FIFO_LEVEL, FIFO_HIGH_WATER, ALIVE_NS, EXPECTED_SEQ,
//       SESSION, COUNTERS (writes ignored)
//   RW  CONTROL, UDP_PORT (byte strobes honoured), LOCATE_BITMAP (8 KiB, one bit per locate)
//   WS  COMMAND: a write sets bits; the parser applies them between packets and the
//       register reads 0 again once done (the host polls for 0 as the acknowledgement)
// Unmapped offsets read 0. Reads take two cycles after the address (the bitmap is block
// RAM); writes answer OKAY one cycle after both address and data arrived.
`timescale 1ns / 1ps
`default_nettype none

module tp_regfile #(
    parameter integer FIFO_DEPTH = 4096,
    parameter integer LEVEL_W = 13,
    parameter integer NS_PER_CYCLE = 4       // ALIVE_NS step: 4 ns at 250 MHz
) (
    input  wire               clk,
    input  wire               rst,
    // AXI4-Lite slave
    input  wire [13:0]        s_awaddr,
    input  wire               s_awvalid,
    output wire               s_awready,
    input  wire [31:0]        s_wdata,
    input  wire [3:0]         s_wstrb,
    input  wire               s_wvalid,
    output wire               s_wready,
    output wire [1:0]         s_bresp,
    output reg                s_bvalid,
    input  wire               s_bready,
    input  wire [13:0]        s_araddr,
    input  wire               s_arvalid,
    output wire               s_arready,
    output wire [31:0]        s_rdata,
    output wire [1:0]         s_rresp,
    output wire               s_rvalid,
    input  wire               s_rready,
    // to the parser
    output reg  [31:0]        control,
    output reg  [31:0]        udp_port,
    output reg  [2:0]         command,
    input  wire               command_done,
    input  wire [10:0]        bm_addr,
    output reg  [31:0]        bm_word,
    // status from the card
    input  wire               link_up,
    input  wire               input_done,
    input  wire               overflow,
    input  wire               locked,
    input  wire [79:0]        session,
    input  wire [63:0]        expected,
    input  wire [LEVEL_W-1:0] fifo_level,
    input  wire [31:0]        high_water,
    input  wire [64*23-1:0]   counters_flat
);
`include "tp_regmap.vh"

    localparam integer BM_WORDS = TP_LOCATE_BITMAP_BYTES / 4;

    // locate bitmap: one memory per byte lane (byte strobes), a host port and a parser port
    reg [7:0] bm0 [0:BM_WORDS-1];
    reg [7:0] bm1 [0:BM_WORDS-1];
    reg [7:0] bm2 [0:BM_WORDS-1];
    reg [7:0] bm3 [0:BM_WORDS-1];
    integer i;
    initial begin
        for (i = 0; i < BM_WORDS; i = i + 1) begin
            bm0[i] = 8'd0; bm1[i] = 8'd0; bm2[i] = 8'd0; bm3[i] = 8'd0;
        end
    end

    reg [63:0] alive_ns;
    always @(posedge clk) alive_ns <= rst ? 64'd0 : alive_ns + NS_PER_CYCLE;

    // ---- writes ----
    wire        wr_go = s_awvalid && s_wvalid && !s_bvalid;
    assign      s_awready = wr_go;
    assign      s_wready = wr_go;
    assign      s_bresp = 2'b00;
    wire [13:0] wa = {s_awaddr[13:2], 2'b00};
    wire        wr_bm = wr_go && wa >= TP_LOCATE_BITMAP;
    wire [10:0] wbm = s_awaddr[12:2];
    wire [31:0] wmask = {{8{s_wstrb[3]}}, {8{s_wstrb[2]}}, {8{s_wstrb[1]}}, {8{s_wstrb[0]}}};

    always @(posedge clk) begin
        if (wr_bm && s_wstrb[0]) bm0[wbm] <= s_wdata[7:0];
        if (wr_bm && s_wstrb[1]) bm1[wbm] <= s_wdata[15:8];
        if (wr_bm && s_wstrb[2]) bm2[wbm] <= s_wdata[23:16];
        if (wr_bm && s_wstrb[3]) bm3[wbm] <= s_wdata[31:24];
        bm_word <= {bm3[bm_addr], bm2[bm_addr], bm1[bm_addr], bm0[bm_addr]};
    end

    wire [2:0] cmd_set = (wr_go && wa == TP_REG_COMMAND) ? (s_wdata[2:0] & {3{s_wstrb[0]}}) : 3'd0;
    always @(posedge clk) begin
        if (rst) begin
            control <= 32'd0;
            udp_port <= 32'd0;
            command <= 3'd0;
            s_bvalid <= 1'b0;
        end else begin
            if (wr_go && wa == TP_REG_CONTROL) control <= (control & ~wmask) | (s_wdata & wmask);
            if (wr_go && wa == TP_REG_UDP_PORT) udp_port <= (udp_port & ~wmask) | (s_wdata & wmask);
            command <= (command_done ? 3'd0 : command) | cmd_set;
            if (wr_go) s_bvalid <= 1'b1;
            else if (s_bready) s_bvalid <= 1'b0;
        end
    end

    // ---- reads: address -> (register mux, bitmap read) -> data ----
    reg [1:0]  rphase;
    reg [13:0] ra;
    reg [31:0] rval;
    reg [31:0] rbm;
    reg        rfrom_bm;
    assign s_arready = rphase == 2'd0;
    assign s_rvalid = rphase == 2'd2;
    assign s_rresp = 2'b00;
    assign s_rdata = rfrom_bm ? rbm : rval;

    wire [31:0] status = ({31'd0, link_up} << TP_ST_LINK_UP)
                       | ({31'd0, control[TP_CTRL_ENABLE]} << TP_ST_ENABLED)
                       | ({31'd0, overflow} << TP_ST_OVERFLOW)
                       | ({31'd0, locked} << TP_ST_SESSION_LOCKED)
                       | ({31'd0, input_done} << TP_ST_INPUT_DONE)
                       | ({31'd0, control[TP_CTRL_DROP_ON_FULL]} << TP_ST_DROP_ON_FULL);
    wire [13:0] cnt_off = ra - TP_COUNTERS_BASE;
    wire [63:0] cnt_val = counters_flat[64 * cnt_off[7:3] +: 64];

    reg [31:0] mux;
    always @* begin
        mux = 32'd0;
        if (ra >= TP_COUNTERS_BASE && ra < TP_COUNTERS_END) begin
            mux = ra[2] ? cnt_val[63:32] : cnt_val[31:0];
        end else begin
            case ({ra[13:2], 2'b00})
                TP_REG_ID: mux = TP_ID_MAGIC;
                TP_REG_VERSION: mux = TP_VERSION;
                TP_REG_RECORD_BYTES: mux = TP_RECORD_BYTES;
                TP_REG_EVENT_VERSION: mux = TP_EVENT_VERSION;
                TP_REG_FIFO_DEPTH: mux = FIFO_DEPTH;
                TP_REG_C2H_ALIGN: mux = TP_C2H_ALIGN_BYTES;
                TP_REG_REGFILE_BYTES: mux = TP_REGFILE_BYTES;
                TP_REG_CONTROL: mux = control;
                TP_REG_UDP_PORT: mux = udp_port;
                TP_REG_COMMAND: mux = {29'd0, command};
                TP_REG_STATUS: mux = status;
                TP_REG_FIFO_LEVEL: mux = fifo_level;
                TP_REG_FIFO_HIGH_WATER: mux = high_water;
                TP_REG_ALIVE_NS: mux = alive_ns[31:0];
                TP_REG_ALIVE_NS + 14'd4: mux = alive_ns[63:32];
                TP_REG_EXPECTED_SEQ: mux = expected[31:0];
                TP_REG_EXPECTED_SEQ + 14'd4: mux = expected[63:32];
                TP_REG_SESSION: mux = session[31:0];
                TP_REG_SESSION + 14'd4: mux = session[63:32];
                TP_REG_SESSION + 14'd8: mux = {16'd0, session[79:64]};
                default: mux = 32'd0;
            endcase
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            rphase <= 2'd0;
            ra <= 14'd0;
            rval <= 32'd0;
            rfrom_bm <= 1'b0;
        end else begin
            case (rphase)
                2'd0: if (s_arvalid) begin
                    ra <= {s_araddr[13:2], 2'b00};
                    rphase <= 2'd1;
                end
                2'd1: begin
                    rval <= mux;
                    rfrom_bm <= ra >= TP_LOCATE_BITMAP;
                    rphase <= 2'd2;
                end
                default: if (s_rready) rphase <= 2'd0;
            endcase
        end
    end
    // the host's bitmap port (the parser has its own, above)
    always @(posedge clk) begin
        rbm <= {bm3[ra[12:2]], bm2[ra[12:2]], bm1[ra[12:2]], bm0[ra[12:2]]};
    end
endmodule

`default_nettype wire
