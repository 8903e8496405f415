// tp_record_fifo: the card's output FIFO of 64-byte event records, and its C2H master stream.
//
// The FIFO the emulator keeps as `fifo`/`fctl` (fpga/emulator/datapath.py): DEPTH records of
// 512 bits (one record per beat of the 512-bit C2H AXI4-Stream, record byte 0 in
// m_tdata[7:0]). The memory is written and read synchronously (block RAM / UltraRAM), with
// a first-word-fall-through output register; `level` counts the memory and that register,
// so it is the number FIFO_LEVEL shows and the one the parser's full / room checks use.
//
// m_tlast marks a packet's last record: written with it (`wlast`) when the packet's end
// reached the parser's record path with that record, or set afterwards (`mark_last`) on the
// newest entry while it is still queued. A record already taken by the C2H engine cannot be
// marked: its packet's records then end at the next tlast (the host's O_TRUNC eop flush
// returns on that one).
`timescale 1ns / 1ps
`default_nettype none

module tp_record_fifo #(
    parameter integer DEPTH = 4096,
    parameter integer AW = 12,             // log2(DEPTH)
    parameter integer LEVEL_W = 13         // bits of a level (holds DEPTH)
) (
    input  wire               clk,
    input  wire               rst,
    input  wire               wr,
    input  wire [511:0]       wdata,
    input  wire               wlast,
    input  wire               mark_last,
    output reg  [LEVEL_W-1:0] level,
    output reg                m_tvalid,
    output reg  [511:0]       m_tdata,
    output reg                m_tlast,
    input  wire               m_tready,
    output wire               take
);
    reg [511:0] mem [0:DEPTH-1];
    reg [DEPTH-1:0] lastbits;
    reg [AW:0] wp, rp;
    wire        mem_empty = wp == rp;      // an equality, not a subtraction: no carry chain
    assign      take = m_tvalid && m_tready;
    wire        load = !mem_empty && (!m_tvalid || take);
    reg  [AW-1:0] newest;                // wp - 1, kept as a register (no decrement in the path)
    wire        mark_mem = mark_last && !mem_empty;

    always @(posedge clk) begin
        if (wr) mem[wp[AW-1:0]] <= wdata;
        if (load) m_tdata <= mem[rp[AW-1:0]];
    end

    always @(posedge clk) begin
        if (rst) begin
            wp <= {(AW + 1){1'b0}};
            rp <= {(AW + 1){1'b0}};
            m_tvalid <= 1'b0;
            m_tlast <= 1'b0;
            level <= {LEVEL_W{1'b0}};
            lastbits <= {DEPTH{1'b0}};
            newest <= {AW{1'b1}};
        end else begin
            if (wr) begin
                wp <= wp + 1'b1;
                newest <= wp[AW-1:0];
                lastbits[wp[AW-1:0]] <= wlast;
            end
            if (mark_mem) lastbits[newest] <= 1'b1;
            if (load) begin
                rp <= rp + 1'b1;
                m_tvalid <= 1'b1;
                m_tlast <= lastbits[rp[AW-1:0]] || (mark_mem && rp[AW-1:0] == newest);
            end else if (take) begin
                m_tvalid <= 1'b0;
            end else if (mark_last && mem_empty && m_tvalid) begin
                m_tlast <= 1'b1;         // the newest record is the one on the output
            end
            level <= level + wr - take;
        end
    end
endmodule

`default_nettype wire
