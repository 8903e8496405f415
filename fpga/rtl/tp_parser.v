// tp_parser: the MoldUDP64 + ITCH 5.0 parser core of the tickpath card.
//
// The RTL that fpga/emulator/datapath.py models. A 64-bit AXI4-Stream slave takes one UDP
// payload per packet (byte 0 of the payload in tdata[7:0]; tkeep may be partial on the
// last beat; tuser on the first beat carries the sideband the UDP front end knows):
//
//     s_tuser[15:0]   payload length in bytes (the stream must carry ceil(len/8) beats)
//     s_tuser[31:16]  UDP destination port (0 = unknown: the port filter does not apply)
//     s_tuser[95:32]  receive time, ns (CLOCK_REALTIME of the MAC timestamp)
//     s_tuser[96]     not feed: the front end saw no IPv4/UDP datagram (counted, dropped)
//
// Each byte lane steps one state machine (HEADER -> LEN_HI -> LEN_LO -> BODY -> LEN_HI ...
// -> DONE, or DROP), eight lanes per cycle chained combinationally, so the core takes one
// beat every cycle. Body bytes go straight to their byte of the 64-byte record through the
// field ROM (tp_itch_rom.vh, generated from fpga/emulator/rom.py). At most one record can
// complete per beat (the shortest record message is 14 bytes with its length field), so the
// record path is one record wide:
//
//   beat (cycle t) --> S1 (t+1: locate bitmap read issued) --> S2 (t+2: filter, FIFO full
//   check, write into tp_record_fifo)
//
// Sequence rules, counters and their order are those of runtime/feed/decoder.py and the
// emulator: gap record before a packet's messages, every message consumes a number,
// duplicates are walked over whatever they hold, a length past the end stops the packet
// without consuming a number. Control (CONTROL, UDP_PORT) is sampled at a packet's first
// beat; COMMAND strobes are applied between packets with the record path empty.
//
// Back-pressure (CONTROL.DROP_ON_FULL clear): a packet's first beat is accepted only when
// the FIFO (plus the records in S1/S2) has room for the most records the packet can yield,
// 1 + (len - 20) / 14, or is empty; otherwise s_tready stays low and BACKPRESSURE_STALLS
// counts the stall once. Drop-on-full: a record meeting a full FIFO is dropped and counted.
`timescale 1ns / 1ps
`default_nettype none

module tp_parser #(
    parameter integer FIFO_DEPTH = 4096,
    parameter integer LEVEL_W = 13        // bits of a FIFO level (holds FIFO_DEPTH)
) (
    input  wire                   clk,
    input  wire                   rst,
    // ingress: UDP payloads
    input  wire [63:0]            s_tdata,
    input  wire [7:0]             s_tkeep,
    input  wire                   s_tvalid,
    input  wire                   s_tlast,
    input  wire [96:0]            s_tuser,
    output wire                   s_tready,
    // from the register file
    input  wire [31:0]            control,
    input  wire [31:0]            udp_port,      // 0 = any
    input  wire [2:0]             command,       // pending COMMAND bits
    output wire                   command_done,  // pulse: `command` applied, clear it
    input  wire                   overrun,       // pulse: a packet lost before the parser
    output wire [10:0]            bm_addr,       // locate bitmap word read (1-cycle latency)
    input  wire [31:0]            bm_word,
    // into the record FIFO
    output reg                    rec_write,
    output reg  [511:0]           rec_data,
    output reg                    rec_last,
    output reg                    rec_mark_last, // set `last` on the newest FIFO entry
    input  wire [LEVEL_W-1:0]     fifo_level,
    input  wire                   c2h_take,      // a record left for the host
    // status and counters for the register file
    output reg                    overflow,
    output reg                    locked,
    output reg  [79:0]            session,
    output reg  [63:0]            expected,
    output reg  [31:0]            high_water,
    output wire [64*23-1:0]       counters_flat
);
`include "tp_regmap.vh"
`include "tp_itch_rom.vh"

    localparam [2:0] S_HEADER = 3'd0, S_LEN_HI = 3'd1, S_LEN_LO = 3'd2, S_BODY = 3'd3,
                     S_DONE = 3'd4, S_DROP = 3'd5;

    // ---- per-packet state ----
    reg         in_pkt;                 // between an accepted first beat and its tlast
    reg         r_parse;                // this packet goes through the parser
    reg         r_locf;                 // CONTROL.LOCATE_FILTER sampled at the first beat
    (* fsm_encoding = "none" *)            // the lane chain steps it 8 times a cycle: not an FSM to re-encode
    reg  [2:0]  r_st;
    reg  [12:0] r_beat;
    reg  [15:0] r_n;
    reg  [63:0] r_recv;
    reg  [63:0] r_hseq;
    reg  [15:0] r_count;
    reg         r_wrong;
    reg  [79:0] r_sess_in;
    reg  [15:0] r_mlen;
    reg  [15:0] r_mi;
    reg  [7:0]  r_type;
    reg  [511:0] r_rec;
    reg  [16:0] r_ndup;                // leading messages of this packet below the expected seq
    reg         r_live;                 // header accepted: the packet's messages take numbers
    reg  [63:0] e0;                     // expected seq before this packet's messages
    reg  [15:0] r_midx;
    reg         r_trailing;
    reg         r_stalled;

    // ---- record path ----
    reg         s1_valid, s1_eop, s1_locf, s1_msg;
    reg [511:0] s1_rec;
    reg [15:0]  s1_idx;
    reg [63:0]  s1_hseq;
    reg         s2_valid, s2_eop, s2_locf;
    reg [511:0] s2_rec;
    reg         pushed_open;            // a record of the packet now at S2 is in the FIFO

    // ---- counters ----
    reg [63:0] cnt [0:TP_N_COUNTERS-1];
    genvar gi;
    generate
        for (gi = 0; gi < TP_N_COUNTERS; gi = gi + 1) begin : g_cnt
            assign counters_flat[64 * gi +: 64] = cnt[gi];
        end
    endgenerate

    // the next expected seq: e0, or one past the last message walked (registered inputs only)
    wire [63:0] walked = r_hseq + r_midx;
    wire [63:0] exp_now = (r_live && walked > e0) ? walked : e0;

    // ---- first beat: admission ----
    wire [15:0] t_len = s_tuser[15:0];
    wire [15:0] t_port = s_tuser[31:16];
    wire        t_notfeed = s_tuser[96];
    wire        c_enable = control[TP_CTRL_ENABLE];
    wire        c_drop = control[TP_CTRL_DROP_ON_FULL];
    wire [LEVEL_W+1:0] occupied = fifo_level + s1_valid + s2_valid;
    wire [LEVEL_W+1:0] room = FIFO_DEPTH - occupied;
    wire [15:0] body_len = (t_len > TP_MOLD_HEADER_BYTES) ? t_len - TP_MOLD_HEADER_BYTES : 16'd0;
    // room >= min(1 + body_len / 14, depth)  <=>  room * 14 > body_len, or the FIFO is empty
    wire        fits = ({room, 4'b0} - {room, 1'b0}) > body_len || occupied == 0;
    wire        bp_check = !c_drop && c_enable && !t_notfeed;
    wire        cmd_now = command != 3'd0 && !in_pkt && !s1_valid && !s2_valid;
    wire        admit = !in_pkt && command == 3'd0 && (!bp_check || fits);
    assign      s_tready = in_pkt || admit;
    assign      command_done = cmd_now;
    wire        beat = s_tvalid && s_tready;
    wire        first = beat && !in_pkt;
    wire        port_ok = udp_port == 32'd0 || t_port == 16'd0 || {16'd0, t_port} == udp_port;
    wire        start_parse = c_enable && !t_notfeed && port_ok;

    // ---- the lane chain (combinational) ----
    reg  [2:0]  v_st;
    reg  [12:0] v_beat;
    reg  [15:0] v_n;
    reg  [63:0] v_recv;
    reg  [63:0] v_hseq;
    reg  [15:0] v_count;
    reg         v_wrong;
    reg  [79:0] v_sess_in;
    reg  [15:0] v_mlen;
    reg  [15:0] v_mi;
    reg  [7:0]  v_type;
    reg  [511:0] v_rec;
    reg  [16:0] v_ndup;
    reg         v_live;
    reg  [63:0] v_e0;
    reg  [15:0] v_push_idx;
    reg         v_push_msg;
    reg  [15:0] v_midx;
    reg         v_trailing;
    reg         v_locked;
    reg  [79:0] v_session;
    reg         v_push;
    reg  [511:0] v_push_rec;
    reg  [2:0]  i_messages, i_dup, i_malmsg, i_unknown, i_skipped;
    reg         i_malpkt, i_wrong, i_hb, i_eos, i_gap;
    reg  [63:0] i_gapmsgs;
    reg  [15:0] p;
    reg  [7:0]  b;
    reg  [6:0]  dst;
    reg  [15:0] info;
    reg  [16:0] end_pos;
    reg         dup;
    integer     j;

    always @* begin
        v_st = r_st; v_beat = r_beat; v_n = r_n; v_recv = r_recv; v_hseq = r_hseq;
        v_count = r_count; v_wrong = r_wrong; v_sess_in = r_sess_in; v_mlen = r_mlen;
        v_mi = r_mi; v_type = r_type; v_rec = r_rec; v_ndup = r_ndup; v_midx = r_midx;
        v_trailing = r_trailing;
        v_locked = locked; v_session = session; v_live = r_live; v_e0 = e0;
        v_push = 1'b0; v_push_rec = 512'd0; v_push_idx = 16'd0; v_push_msg = 1'b0;
        i_messages = 3'd0; i_dup = 3'd0; i_malmsg = 3'd0; i_unknown = 3'd0; i_skipped = 3'd0;
        i_malpkt = 1'b0; i_wrong = 1'b0; i_hb = 1'b0; i_eos = 1'b0; i_gap = 1'b0;
        i_gapmsgs = 64'd0;
        p = 16'd0; b = 8'd0; dst = 7'd0; info = 16'd0; end_pos = 17'd0; dup = 1'b0; j = 0;
        if (first) begin
            v_st = start_parse ? S_HEADER : S_DROP;
            v_beat = 13'd0; v_n = t_len; v_recv = s_tuser[95:32]; v_hseq = 64'd0;
            v_count = 16'd0; v_wrong = 1'b0; v_trailing = 1'b0; v_midx = 16'd0;
            v_live = 1'b0; v_ndup = 17'd0; v_e0 = exp_now;
        end
        if (beat) begin
            for (j = 0; j < 8; j = j + 1) begin
                p = {v_beat, 3'b000} + j;
                b = s_tdata[8 * j +: 8];
                if (p < v_n && v_st < S_DONE) begin
                    case (v_st)
                    S_HEADER: begin
                        if (p < 10) begin
                            if (v_locked && v_session[8 * p +: 8] != b) v_wrong = 1'b1;
                            v_sess_in[8 * p +: 8] = b;
                        end else if (p < 18) begin
                            v_hseq = {v_hseq[55:0], b};
                        end else begin
                            v_count = {v_count[7:0], b};
                        end
                        if (p == TP_MOLD_HEADER_BYTES - 1) begin
                            if (v_wrong) begin
                                i_wrong = 1'b1;
                                v_st = S_DROP;
                            end else begin
                                if (!v_locked) begin
                                    v_locked = 1'b1;
                                    v_session = v_sess_in;
                                end
                                if (v_hseq[63:62] != 2'b00) begin         // > TP_MAX_SEQ
                                    i_malpkt = 1'b1;
                                    v_st = S_DROP;
                                end else begin
                                    if (v_e0 == 64'd0) v_e0 = v_hseq;      // adopt
                                    if (v_hseq > v_e0) begin
                                        i_gap = 1'b1;
                                        i_gapmsgs = v_hseq - v_e0;
                                        v_push = 1'b1;
                                        v_push_rec[8 * TP_EV_SEQ +: 64] = v_e0;
                                        v_push_rec[8 * TP_EV_TS_RECV +: 64] = v_recv;
                                        v_push_rec[8 * TP_EV_SHARES +: 64] = v_hseq - v_e0;
                                        v_push_rec[8 * TP_EV_VERSION +: 8] = TP_EVENT_VERSION;
                                        v_push_rec[8 * TP_EV_FLAGS +: 32] = TP_FLAG_GAP;
                                        v_e0 = v_hseq;
                                    end
                                    // message i (seq hseq + i) is a duplicate iff i < e0 - hseq:
                                    // one 64-bit compare per packet, 16-bit ones per message
                                    v_live = 1'b1;
                                    if (v_e0 > v_hseq)
                                        v_ndup = (v_e0 - v_hseq > 64'h1FFFF) ? 17'h1FFFF
                                                 : v_e0[16:0] - v_hseq[16:0];
                                    if (v_count == 16'd0 || v_count == TP_MOLD_EOS_COUNT) begin
                                        if (v_count == 16'd0) i_hb = 1'b1; else i_eos = 1'b1;
                                        v_st = S_DONE;
                                        v_trailing = p + 1 < v_n;
                                    end else begin
                                        v_st = S_LEN_HI;
                                    end
                                end
                            end
                        end
                    end
                    S_LEN_HI: begin
                        v_mlen = {b, 8'd0};
                        v_st = S_LEN_LO;
                    end
                    S_LEN_LO: begin
                        v_mlen = {v_mlen[15:8], b};
                        end_pos = p + v_mlen;
                        if (end_pos >= v_n) begin
                            // the length runs past the packet: damaged, consumes no number
                            i_messages = i_messages + 1'b1;
                            i_malmsg = i_malmsg + 1'b1;
                            i_malpkt = 1'b1;
                            v_st = S_DROP;
                        end else begin
                            v_mi = 16'd0;
                            v_rec = 512'd0;
                            v_type = 8'd0;
                            if (v_mlen == 16'd0) begin
                                // zero length: a message that consumes a number
                                i_messages = i_messages + 1'b1;
                                if ({1'b0, v_midx} < v_ndup) i_dup = i_dup + 1'b1;
                                else i_malmsg = i_malmsg + 1'b1;
                                v_midx = v_midx + 1'b1;
                                if (v_midx >= v_count) begin
                                    v_st = S_DONE;
                                    v_trailing = p + 1 < v_n;
                                end else begin
                                    v_st = S_LEN_HI;
                                end
                            end else begin
                                v_st = S_BODY;
                            end
                        end
                    end
                    default: begin  // S_BODY
                        if (v_mi == 16'd0) begin
                            v_type = b;
                        end else if (v_mi < TP_ROM_OFFSETS) begin
                            dst = tp_rom_dst(v_type, v_mi[5:0]);
                            if (dst[6]) v_rec[{dst[5:0], 3'b000} +: 8] = b;
                        end
                        v_mi = v_mi + 1'b1;
                        if (v_mi == v_mlen) begin
                            i_messages = i_messages + 1'b1;
                            dup = {1'b0, v_midx} < v_ndup;
                            info = tp_msg_info(v_type);
                            if (dup) begin
                                i_dup = i_dup + 1'b1;
                            end else if (info[15:14] == TP_CLASS_UNDEFINED) begin
                                i_unknown = i_unknown + 1'b1;
                            end else if (v_mlen < {8'd0, info[7:0]}) begin
                                i_malmsg = i_malmsg + 1'b1;
                            end else if (info[15:14] != TP_CLASS_RECORD) begin
                                i_skipped = i_skipped + 1'b1;
                            end else begin
                                v_push = 1'b1;
                                v_push_rec = v_rec;
                                v_push_msg = 1'b1;       // seq = hseq + idx, added in S1
                                v_push_idx = v_midx;
                                v_push_rec[8 * TP_EV_TS_RECV +: 64] = v_recv;
                                v_push_rec[8 * TP_EV_MSG_TYPE +: 8] = v_type;
                                v_push_rec[8 * TP_EV_VERSION +: 8] = TP_EVENT_VERSION;
                                v_push_rec[8 * TP_EV_FLAGS +: 32] = {26'd0, info[13:8]};
                            end
                            v_midx = v_midx + 1'b1;
                            if (v_midx >= v_count) begin
                                v_st = S_DONE;
                                v_trailing = p + 1 < v_n;
                            end else begin
                                v_st = S_LEN_HI;
                            end
                        end
                    end
                    endcase
                end
            end
            v_beat = v_beat + 1'b1;
            if (s_tlast && (first ? start_parse : r_parse)) begin
                // how the packet ended: short header, fewer messages than its count, a
                // message cut by an early tlast, or bytes after the last message
                if (v_st == S_HEADER || v_st == S_LEN_HI || v_st == S_LEN_LO || v_st == S_BODY)
                    i_malpkt = 1'b1;
                else if (v_st == S_DONE && v_trailing)
                    i_malpkt = 1'b1;
            end
        end
    end

    // ---- S2 decision: locate filter, FIFO full ----
    wire [15:0] s2_locate = s2_rec[8 * TP_EV_LOCATE +: 16];
    wire        s2_filtered = s2_locf && s2_locate != 16'd0 && !bm_word[s2_locate[4:0]];
    wire        s2_full = fifo_level >= FIFO_DEPTH;
    wire        s2_write = s2_valid && !s2_filtered && !s2_full;
    wire [15:0] s1_locate = s1_rec[8 * TP_EV_LOCATE +: 16];
    assign      bm_addr = s1_locate[15:5];

    // counter increments of this cycle
    reg [63:0] inc [0:TP_N_COUNTERS-1];
    integer k;
    always @* begin
        for (k = 0; k < TP_N_COUNTERS; k = k + 1) inc[k] = 64'd0;
        if (first) begin
            inc[TP_CNT_PACKETS_IN] = 64'd1;
            if (!c_enable) inc[TP_CNT_PACKETS_DISABLED] = 64'd1;
            else if (t_notfeed) inc[TP_CNT_PACKETS_NOT_FEED] = 64'd1;
            else if (!port_ok) inc[TP_CNT_PACKETS_FILTERED] = 64'd1;
            else begin
                inc[TP_CNT_PACKETS] = 64'd1;
                inc[TP_CNT_BEATS_IN] = {51'd0, t_len[15:3]} + (t_len[2:0] != 3'd0);
            end
        end
        if (!in_pkt && s_tvalid && !s_tready && bp_check && command == 3'd0 && !r_stalled)
            inc[TP_CNT_BACKPRESSURE_STALLS] = 64'd1;
        inc[TP_CNT_MESSAGES] = i_messages;
        inc[TP_CNT_DUPLICATES] = i_dup;
        inc[TP_CNT_MALFORMED_MESSAGES] = i_malmsg;
        inc[TP_CNT_UNKNOWN_TYPES] = i_unknown;
        inc[TP_CNT_SKIPPED_TYPES] = i_skipped;
        inc[TP_CNT_MALFORMED_PACKETS] = i_malpkt;
        inc[TP_CNT_WRONG_SESSION] = i_wrong;
        inc[TP_CNT_HEARTBEATS] = i_hb;
        inc[TP_CNT_END_OF_SESSION] = i_eos;
        inc[TP_CNT_GAPS] = i_gap;
        inc[TP_CNT_GAP_MESSAGES] = i_gapmsgs;
        inc[TP_CNT_MESSAGES_OUT] = s2_write;
        inc[TP_CNT_LOCATE_FILTERED] = s2_valid && s2_filtered;
        inc[TP_CNT_FIFO_DROPPED] = s2_valid && !s2_filtered && s2_full;
        inc[TP_CNT_RECORDS_C2H] = c2h_take;
        inc[TP_CNT_INGRESS_OVERRUN] = overrun;
    end

    wire clear_counters = cmd_now && command[TP_CMD_RESET_COUNTERS];
    integer c;
    always @(posedge clk) begin
        for (c = 0; c < TP_N_COUNTERS; c = c + 1)
            cnt[c] <= (rst || clear_counters ? 64'd0 : cnt[c]) + (rst ? 64'd0 : inc[c]);
    end

    // ---- registers ----
    always @(posedge clk) begin
        if (rst) begin
            in_pkt <= 1'b0; r_parse <= 1'b0; r_locf <= 1'b0; r_st <= S_DROP; r_beat <= 13'd0;
            r_n <= 16'd0; r_recv <= 64'd0; r_hseq <= 64'd0; r_count <= 16'd0; r_wrong <= 1'b0;
            r_sess_in <= 80'd0; r_mlen <= 16'd0; r_mi <= 16'd0; r_type <= 8'd0; r_rec <= 512'd0;
            r_ndup <= 17'd0; r_live <= 1'b0; r_midx <= 16'd0; r_trailing <= 1'b0; r_stalled <= 1'b0;
            locked <= 1'b0; session <= 80'd0;
            e0 <= control[TP_CTRL_ADOPT_FIRST_SEQ] ? 64'd0 : TP_FIRST_SEQ;
            expected <= control[TP_CTRL_ADOPT_FIRST_SEQ] ? 64'd0 : TP_FIRST_SEQ;
            s1_msg <= 1'b0; s1_idx <= 16'd0; s1_hseq <= 64'd0;
            overflow <= 1'b0; high_water <= 32'd0;
            s1_valid <= 1'b0; s1_eop <= 1'b0; s1_locf <= 1'b0; s1_rec <= 512'd0;
            s2_valid <= 1'b0; s2_eop <= 1'b0; s2_locf <= 1'b0; s2_rec <= 512'd0;
            pushed_open <= 1'b0;
            rec_write <= 1'b0; rec_data <= 512'd0; rec_last <= 1'b0; rec_mark_last <= 1'b0;
        end else begin
            if (beat) begin
                r_st <= v_st; r_beat <= v_beat; r_n <= v_n; r_recv <= v_recv; r_hseq <= v_hseq;
                r_count <= v_count; r_wrong <= v_wrong; r_sess_in <= v_sess_in; r_mlen <= v_mlen;
                r_mi <= v_mi; r_type <= v_type; r_rec <= v_rec; r_ndup <= v_ndup; r_midx <= v_midx;
                r_trailing <= v_trailing;
                locked <= v_locked; session <= v_session; r_live <= v_live; e0 <= v_e0;
                in_pkt <= !s_tlast;
                if (first) begin
                    r_parse <= start_parse;
                    r_locf <= control[TP_CTRL_LOCATE_FILTER];
                end
            end
            if (first) r_stalled <= 1'b0;
            else if (!in_pkt && s_tvalid && !s_tready && bp_check && command == 3'd0) r_stalled <= 1'b1;
            // S1 <- a record completed in this beat; the packet's end travels with it
            expected <= exp_now;
            s1_valid <= v_push;
            s1_rec <= v_push_rec;
            s1_msg <= v_push_msg;
            s1_idx <= v_push_idx;
            s1_hseq <= v_hseq;
            s1_eop <= beat && s_tlast;
            s1_locf <= first ? control[TP_CTRL_LOCATE_FILTER] : r_locf;
            // S2 <- S1 (the bitmap word for S1's locate arrives with it)
            s2_valid <= s1_valid; s2_eop <= s1_eop; s2_locf <= s1_locf;
            s2_rec <= s1_rec;
            if (s1_msg) s2_rec[8 * TP_EV_SEQ +: 64] <= s1_hseq + s1_idx;
            // S2 -> FIFO; tlast on a packet's last record (or set on it afterwards)
            rec_write <= s2_write;
            rec_data <= s2_rec;
            rec_last <= s2_write && s2_eop;
            rec_mark_last <= s2_eop && !s2_write && pushed_open;
            if (s2_eop) pushed_open <= 1'b0;
            else if (s2_write) pushed_open <= 1'b1;
            if (s2_valid && !s2_filtered && s2_full) overflow <= 1'b1;
            if (high_water < fifo_level) high_water <= fifo_level;
            // COMMAND strobes, between packets with the record path empty
            if (cmd_now) begin
                if (command[TP_CMD_RESET_COUNTERS]) high_water <= fifo_level;
                if (command[TP_CMD_CLEAR_OVERFLOW]) overflow <= 1'b0;
                if (command[TP_CMD_RESET_SESSION]) begin
                    locked <= 1'b0;
                    session <= 80'd0;
                    r_live <= 1'b0;
                    e0 <= control[TP_CTRL_ADOPT_FIRST_SEQ] ? 64'd0 : TP_FIRST_SEQ;
                    expected <= control[TP_CTRL_ADOPT_FIRST_SEQ] ? 64'd0 : TP_FIRST_SEQ;
                end
            end
        end
    end
endmodule

`default_nettype wire
