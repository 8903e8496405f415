// tb_feed: file-driven testbench of tp_itch_top, the same source for Icarus and Verilator.
//
// Reads a stimulus file of hex tokens (written by fpga/sim/cosim.py), one operation each:
//   1 n port recv_ns not_feed  w0 .. w(k-1)   a packet: n payload bytes, k = max(1, ceil(n/8))
//                                             64-bit words, byte 0 of the payload in bits 7:0
//   2 addr data                               AXI-Lite write
//   3 addr data                               AXI-Lite write, then read until it is 0 (COMMAND)
//   4 on                                      hold the C2H output (tready low) or release it
//   5 cycles                                  idle
//   0                                         end: drain, dump the register page, finish
// and writes one line per event to the output file:
//   S pkt edge / L pkt edge    a packet's first / last beat was taken at clock edge `edge`
//   O edge last data           a record left on C2H at `edge` (512-bit hex, byte 0 lowest)
//   R addr data                register words 0x000 .. COUNTERS_END, read over AXI-Lite
//   T edges                    clock edges simulated
// +gap=PCT inserts idle input cycles, +stall=PCT drops the output tready at random
// (xorshift32 seeded by +seed, identical on both simulators).
// Signals change at the falling edge and are judged just after it, so both simulators see
// the same handshakes at the rising edge.
`timescale 1ns / 1ps
`default_nettype none

module tb_feed;
    parameter integer FIFO_DEPTH = 4096;
    parameter integer FIFO_AW = 12;
`include "tp_regmap.vh"

    reg clk = 1'b0;
    always #2 clk = ~clk;
    reg rst = 1'b1;
    reg [63:0] edges = 64'd0;
    always @(posedge clk) edges <= edges + 1'b1;

    reg  [63:0]  s_tdata = 64'd0;
    reg  [7:0]   s_tkeep = 8'd0;
    reg          s_tvalid = 1'b0;
    reg          s_tlast = 1'b0;
    reg  [96:0]  s_tuser = 97'd0;
    wire         s_tready;
    wire [511:0] m_tdata;
    wire         m_tvalid;
    wire         m_tlast;
    reg          m_tready = 1'b0;
    reg  [13:0]  awaddr = 14'd0;
    reg          awvalid = 1'b0;
    wire         awready;
    reg  [31:0]  wdata = 32'd0;
    reg          wvalid = 1'b0;
    wire         wready;
    wire [1:0]   bresp;
    wire         bvalid;
    reg          bready = 1'b0;
    reg  [13:0]  araddr = 14'd0;
    reg          arvalid = 1'b0;
    wire         arready;
    wire [31:0]  rdata;
    wire [1:0]   rresp;
    wire         rvalid;
    reg          rready = 1'b0;

    tp_itch_top #(.FIFO_DEPTH(FIFO_DEPTH), .FIFO_AW(FIFO_AW)) dut (
        .clk(clk), .rst(rst),
        .s_axis_tdata(s_tdata), .s_axis_tkeep(s_tkeep), .s_axis_tvalid(s_tvalid),
        .s_axis_tlast(s_tlast), .s_axis_tuser(s_tuser), .s_axis_tready(s_tready),
        .m_axis_tdata(m_tdata), .m_axis_tvalid(m_tvalid), .m_axis_tlast(m_tlast),
        .m_axis_tready(m_tready),
        .s_axil_awaddr(awaddr), .s_axil_awvalid(awvalid), .s_axil_awready(awready),
        .s_axil_wdata(wdata), .s_axil_wstrb(4'hF), .s_axil_wvalid(wvalid),
        .s_axil_wready(wready), .s_axil_bresp(bresp), .s_axil_bvalid(bvalid),
        .s_axil_bready(bready), .s_axil_araddr(araddr), .s_axil_arvalid(arvalid),
        .s_axil_arready(arready), .s_axil_rdata(rdata), .s_axil_rresp(rresp),
        .s_axil_rvalid(rvalid), .s_axil_rready(rready),
        .link_up(1'b1), .input_done(1'b0), .ingress_overrun(1'b0));

    integer fin, fout, r, op, k, nb, gap_pct, stall_pct, quiet, pkt;
    reg [31:0] rng;
    reg [63:0] a0, a1, a2, a3, w;
    reg [31:0] rd;
    reg hold = 1'b0;
    reg done = 1'b0;
    reg [8*1024:1] in_path, out_path;

    function [31:0] xorshift;
        input [31:0] x;
        reg [31:0] y;
        begin
            y = x ^ (x << 13);
            y = y ^ (y >> 17);
            xorshift = y ^ (y << 5);
        end
    endfunction

    // the C2H sink: tready per cycle, a line per record taken
    reg [31:0] rng_out;
    always @(negedge clk) begin
        rng_out = xorshift(rng_out);
        m_tready = !rst && !hold && (rng_out % 100) >= stall_pct;
        #1;
        if (m_tvalid && m_tready)
            $fwrite(fout, "O %0d %0d %0128h\n", edges + 1, m_tlast, m_tdata);
    end

    task axil_write;
        input [13:0] addr;
        input [31:0] data;
        begin
            @(negedge clk);
            awaddr = addr; wdata = data; awvalid = 1'b1; wvalid = 1'b1; bready = 1'b1;
            #1;
            while (!awready) begin @(negedge clk); #1; end
            @(negedge clk);
            awvalid = 1'b0; wvalid = 1'b0;
            #1;
            while (!bvalid) begin @(negedge clk); #1; end
            @(negedge clk);
            bready = 1'b0;
        end
    endtask

    task axil_read;
        input [13:0] addr;
        output [31:0] data;
        begin
            @(negedge clk);
            araddr = addr; arvalid = 1'b1;
            #1;
            while (!arready) begin @(negedge clk); #1; end
            @(negedge clk);
            arvalid = 1'b0; rready = 1'b1;
            #1;
            while (!rvalid) begin @(negedge clk); #1; end
            data = rdata;
            @(negedge clk);
            rready = 1'b0;
        end
    endtask

    // one input beat: driven at a falling edge, held until a rising edge takes it
    task put_beat;
        input [63:0] data;
        input [7:0] keep;
        input last;
        input is_first;
        begin
            rng = xorshift(rng);
            while ((rng % 100) < gap_pct) begin
                s_tvalid = 1'b0;
                @(negedge clk);
                rng = xorshift(rng);
            end
            s_tdata = data; s_tkeep = keep; s_tlast = last; s_tvalid = 1'b1;
            #1;
            while (!s_tready) begin @(negedge clk); #1; end
            if (is_first) $fwrite(fout, "S %0d %0d\n", pkt, edges + 1);
            if (last) $fwrite(fout, "L %0d %0d\n", pkt, edges + 1);
            @(negedge clk);
            s_tvalid = 1'b0;
        end
    endtask

    initial begin
        if (!$value$plusargs("in=%s", in_path)) begin
            $display("tb_feed: +in=FILE missing");
            $finish;
        end
        if (!$value$plusargs("out=%s", out_path)) out_path = "tb_feed.out";
        if (!$value$plusargs("gap=%d", gap_pct)) gap_pct = 0;
        if (!$value$plusargs("stall=%d", stall_pct)) stall_pct = 0;
        if (!$value$plusargs("seed=%d", rng)) rng = 32'd1;
        if (rng == 32'd0) rng = 32'd1;
        rng_out = rng ^ 32'h9E3779B9;
        fin = $fopen(in_path, "r");
        fout = $fopen(out_path, "w");
        pkt = 0;
        repeat (4) @(negedge clk);
        rst = 1'b0;
        @(negedge clk);
        while (!done) begin
            r = $fscanf(fin, "%h", op);
            if (r != 1) op = 0;
            case (op)
                1: begin
                    r = $fscanf(fin, "%h %h %h %h", a0, a1, a2, a3);
                    nb = (a0 + 7) / 8;
                    if (nb == 0) nb = 1;
                    s_tuser = {a3[0], a2, a1[15:0], a0[15:0]};
                    for (k = 0; k < nb; k = k + 1) begin
                        r = $fscanf(fin, "%h", w);
                        put_beat(w, (k == nb - 1) ? (a0[2:0] == 3'd0 && a0 != 0 ? 8'hFF
                                 : (8'hFF >> (8 - a0[2:0]))) : 8'hFF, k == nb - 1, k == 0);
                        s_tuser = 97'd0;
                    end
                    pkt = pkt + 1;
                end
                2: begin
                    r = $fscanf(fin, "%h %h", a0, a1);
                    axil_write(a0[13:0], a1[31:0]);
                end
                3: begin
                    r = $fscanf(fin, "%h %h", a0, a1);
                    axil_write(a0[13:0], a1[31:0]);
                    rd = 32'hFFFFFFFF;
                    while (rd != 32'd0) axil_read(a0[13:0], rd);
                end
                4: begin
                    r = $fscanf(fin, "%h", a0);
                    // a hold is released only once the parser has taken everything before it
                    if (a0 == 0) repeat (16) @(negedge clk);
                    hold = a0 != 0;
                end
                5: begin
                    r = $fscanf(fin, "%h", a0);
                    repeat (a0) @(negedge clk);
                end
                default: done = 1'b1;
            endcase
        end
        // drain: the output idle for 64 cycles with the FIFO empty
        hold = 1'b0;
        quiet = 0;
        while (quiet < 64) begin
            @(negedge clk);
            #1;
            if (m_tvalid || s_tvalid) quiet = 0; else quiet = quiet + 1;
        end
        for (k = 0; k < TP_COUNTERS_END; k = k + 4) begin
            axil_read(k[13:0], rd);
            $fwrite(fout, "R %0h %0h\n", k, rd);
        end
        $fwrite(fout, "T %0d\n", edges);
        $fclose(fout);
        $fclose(fin);
        $finish;
    end
endmodule

`default_nettype wire
