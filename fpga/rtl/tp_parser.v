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
// Pipeline (one beat per cycle; every stage holds one "pass" = one beat, or a part of one):
//
//   I  skid buffer: q_* (the beat the framer works on) and k_* (a second one, so s_tready
//      is a register: low only while k_* is full). CONTROL/UDP_PORT are sampled here, with a
//      packet's first beat.
//   F  framer (f_*): finds message boundaries with a cursor, not per byte. f_nxt is the
//      packet offset of the next message's 2-byte length field; when it falls in the beat,
//      the length is read with one 8:1 lane mux and f_nxt moves to f_nxt + 2 + length. The
//      header (bytes 0..19) is read at fixed lanes of beats 0..2. One length field is read
//      per pass: a beat holding a second length field (only a message shorter than 6 bytes,
//      i.e. damaged input: every ITCH type is 12+ bytes) is walked again in a second pass
//      while the skid buffer holds the next beat (s_tready drops after two such passes).
//      The framer describes each pass to B (b_*): the open message O (length read in an
//      earlier beat) - its lanes, offset and whether it ends here - and the new message M
//      (length read in this pass), the header outcome, and the packet-level events.
//   B  lane routing (c_*): per lane, its message (O or M), its byte offset in the message
//      and its record byte through the field ROM (tp_itch_rom.vh); the message types. And
//      the header's sequence arithmetic: hseq - expected, expected - hseq (64-bit).
//   C  record assembly and sequence state (d_*, acc, sq_*): body bytes merged into the open
//      message's record (acc); gap / adopt / duplicate window decided from B's differences.
//   D  classification (s1_*): duplicate, unknown type, too short, walked over, or a record;
//      the record's seq = hseq + message index; the gap record.
//   S1 locate bitmap read issued.   S2 filter, FIFO full check, write into tp_record_fifo.
//
// At most one record completes per pass (a record message is 12+ bytes, so it cannot start
// and end in one beat; the gap record comes with the header, before any message ends).
//
// Sequence rules, counters and their order are those of runtime/feed/decoder.py and the
// emulator: gap record before a packet's messages, every message consumes a number,
// duplicates are walked over whatever they hold, a length past the end stops the packet
// without consuming a number. COMMAND strobes are applied between packets with every stage
// empty.
//
// Back-pressure (CONTROL.DROP_ON_FULL clear): a packet's first beat is taken by the framer
// only when the FIFO has room for the most records the packet can yield, 1 + (len - 20) / 14,
// beyond INFLIGHT records that may still be in the pipeline, or everything is empty; until
// then it waits in the skid buffer (s_tready drops) and BACKPRESSURE_STALLS counts the stall
// once. Drop-on-full: a record meeting a full FIFO is dropped and counted.
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

    localparam [1:0] F_HDR = 2'd0, F_WALK = 2'd1, F_DONE = 2'd2, F_DROP = 2'd3;
    // records that may sit between the framer and the FIFO count (B, C, D, S1, S2, the FIFO
    // write) plus one for the room estimate being a cycle old
    localparam integer INFLIGHT = 7;
    localparam [63:0] SEQ_INIT = TP_FIRST_SEQ;

    // =====================================================================================
    // I: skid buffer. q_* is the framer's beat; k_* catches the beat that arrives while q_*
    // is not taken. Per beat: data, tlast, first; per packet (first beat): length, receive
    // time and the CONTROL/UDP_PORT decisions sampled as the beat is accepted.
    // =====================================================================================
    localparam integer QW = 64 + 1 + 1 + 16 + 16 + 64 + 20 + 10 + 5;
    reg          alive;                      // out of reset: s_tready may rise
    reg          acc_in_pkt;                 // stream side: inside a packet (first beat taken)
    reg          q_valid, k_valid;
    reg [QW-1:0] q_w, k_w;
    assign s_tready = alive && !k_valid;
    wire         s_take = s_tvalid && s_tready;
    wire [15:0]  t_len = s_tuser[15:0];
    wire [15:0]  t_port = s_tuser[31:16];
    wire         t_port_ok = udp_port == 32'd0 || t_port == 16'd0 || {16'd0, t_port} == udp_port;
    wire [15:0]  t_blen = (t_len > TP_MOLD_HEADER_BYTES) ? t_len - TP_MOLD_HEADER_BYTES : 16'd0;
    wire [4:0]   t_ctl = {control[TP_CTRL_ENABLE], control[TP_CTRL_DROP_ON_FULL],
                          control[TP_CTRL_LOCATE_FILTER], s_tuser[96], t_port_ok};
    reg  [9:0]   t_lm;                       // bit j: payload byte j exists (j < len), j = 0..9
    integer      jl;
    always @* for (jl = 0; jl < 10; jl = jl + 1) t_lm[jl] = t_len > jl;
    // compares of the beat's bytes against constants, done here so the framer only muxes them:
    // per lane j, as if a length field started there, whether the message would end in this
    // beat (j + 1 + length <= 7) and whether the next length field would start in it too
    // (j + 2 + length <= 7); the same for a length whose low byte is lane 0; the header count
    // (lanes 2, 3 of beat 2) = 0, 0xFFFF, 1, 2
    reg  [19:0]  t_df;
    integer      jd;
    always @* begin
        t_df = 20'd0;
        for (jd = 0; jd < 7; jd = jd + 1) begin
            t_df[jd] = jd < 6 && s_tdata[8 * jd +: 8] == 8'd0 && s_tdata[8 * jd + 8 +: 8] < 6 - jd;
            t_df[7 + jd] = s_tdata[8 * jd +: 8] == 8'd0 && s_tdata[8 * jd + 8 +: 8] <= 6 - jd;
        end
        t_df[14] = s_tdata[31:16] == 16'd0;
        t_df[15] = s_tdata[31:16] == 16'hFFFF;
        t_df[16] = {s_tdata[23:16], s_tdata[31:24]} == 16'd1;
        t_df[17] = {s_tdata[23:16], s_tdata[31:24]} == 16'd2;
        t_df[18] = s_tdata[7:0] <= 8'd7;
        t_df[19] = s_tdata[7:0] <= 8'd6;
    end
    wire [QW-1:0] in_w = {s_tdata, s_tlast, !acc_in_pkt, t_len, t_blen, s_tuser[95:32], t_df, t_lm,
                          t_ctl};
    // fields of q_w
    wire [63:0]  q_data = q_w[QW-1 -: 64];
    wire         q_last = q_w[QW-65];
    wire         q_first = q_w[QW-66];
    wire [15:0]  q_len = q_w[QW-67 -: 16];
    wire [15:0]  q_blen = q_w[QW-83 -: 16];
    wire [63:0]  q_recv = q_w[QW-99 -: 64];
    wire [9:0]   q_lm = q_w[14:5];
    wire [6:0]   q_again = q_w[21:15], q_end = q_w[28:22];
    wire         q_cnt0 = q_w[29], q_cnt_eos = q_w[30], q_cnt1 = q_w[31], q_cnt2 = q_w[32];
    wire         q_b0le7 = q_w[33], q_b0le6 = q_w[34];
    wire         q_en = q_w[4], q_drop = q_w[3], q_locf = q_w[2], q_notfeed = q_w[1],
                 q_portok = q_w[0];
    wire         f_pop;                      // the framer is done with q_* this cycle

    always @(posedge clk) begin
        if (rst) begin
            alive <= 1'b0; acc_in_pkt <= 1'b0; q_valid <= 1'b0; k_valid <= 1'b0;
            q_w <= {QW{1'b0}}; k_w <= {QW{1'b0}};
        end else begin
            alive <= 1'b1;
            if (s_take) acc_in_pkt <= !s_tlast;
            if (!q_valid || f_pop) begin
                q_valid <= k_valid || s_take;
                q_w <= k_valid ? k_w : in_w;
                k_valid <= 1'b0;
            end else if (s_take) begin
                k_valid <= 1'b1;
                k_w <= in_w;
            end
        end
    end

    // =====================================================================================
    // F: framer. Registers (per packet unless said):
    //   f_in_pkt   a first beat was taken, its tlast not yet     f_k     index of q's beat
    //   f_parse    the packet goes through the parser            f_n     payload length
    //   f_locf     CONTROL.LOCATE_FILTER of the packet           f_recv  receive time
    //   f_st       HDR (header not complete) / WALK / DONE (count reached) / DROP
    //   f_beat1/2  q holds beat 1 / beat 2 (the header lanes)    f_hdr_len  n >= 20
    //   f_wrong    a session byte differed from the locked one   f_sess  session bytes seen
    //   f_badseq   hseq >= 2^62                                  f_hseq_hi  hseq bytes 10..15
    //   f_nxt      offset of the next length field (f_nxt2 = +2) f_rem   n - f_nxt - 2 (signed)
    //   f_split    the length's high byte (f_hi) was lane 7 of the previous beat
    //   f_midx     index of the next message                     f_left  messages still to
    //   f_left1    f_left == 1                                   start (header count - f_midx)
    //   f_open     message O's length was read, its last byte (f_oend) is in a later beat;
    //              f_omidx, f_olen its index and length, f_obase its offset at lane 0
    //   f_walked   messages walked so far (completed, or zero-length)
    //   f_trail    DONE with bytes after the last message        f_stalled  stall counted
    //   locked, session   the locked MoldUDP64 session (module outputs)
    // =====================================================================================
    reg         f_in_pkt, f_parse, f_locf, f_beat1, f_beat2, f_hdr_len, f_wrong, f_badseq;
    reg         f_split, f_open, f_left1, f_trail, f_stalled;
    (* fsm_encoding = "none" *)              // two bits read in many places: keep them as written
    reg  [1:0]  f_st;
    reg  [12:0] f_k;
    reg  [15:0] f_n, f_nxt, f_nxt2, f_midx, f_left, f_oend, f_omidx, f_olen, f_walked;
    reg  [17:0] f_rem;
    reg  [7:0]  f_hi;
    reg         f_hi_zero;                   // f_hi == 0
    reg  [6:0]  f_obase;
    reg  [63:0] f_recv;
    reg  [79:0] f_sess;
    reg  [47:0] f_hseq_hi;
    reg  [1:0]  f_lm89;                      // payload bytes 8, 9 exist
    reg  [7:0]  f_otype;                     // O's type byte, once seen

    // ---- pipeline registers, F -> B ----
    reg         b_valid, b_first, b_eop, b_locf, b_hdr;
    reg  [63:0] b_data, b_recv, b_hseq;
    reg  [15:0] b_len;
    reg         b_o_here, b_o_end, b_m, b_m_end;
    reg  [7:0]  b_own_o, b_type_o, b_type_m;
    reg  [55:0] b_off;
    reg  [15:0] b_o_midx, b_o_len, b_m_midx, b_m_len, b_walked;
    reg         b_ev_in, b_ev_disabled, b_ev_notfeed, b_ev_filtered, b_ev_parsed;
    reg         b_ev_wrong, b_ev_malpkt, b_ev_hb, b_ev_eos, b_ev_ov;

    // the pipeline holds a pass (COMMAND waits for none; admission counts them as in flight)
    reg         c_valid, d_valid, s1_pass, s2_pass;
    wire        pipe_busy = b_valid || c_valid || d_valid || s1_pass || s2_pass;

    // ---- admission of a packet's first beat ----
    reg  [16:0] room14;                      // (FIFO_DEPTH - level - INFLIGHT) * 14, clamped
    wire        bp_check = !q_drop && q_en && !q_notfeed;
    wire        all_empty = fifo_level == {LEVEL_W{1'b0}} && !rec_write && !pipe_busy;
    wire        fits = room14 > {1'b0, q_blen} || all_empty;
    wire        admit = !f_in_pkt && command == 3'd0 && (!bp_check || fits);
    wire        stall_now = q_valid && q_first && !f_in_pkt && command == 3'd0 && bp_check && !fits;
    wire        cmd_now = command != 3'd0 && !f_in_pkt && !pipe_busy;
    assign      command_done = cmd_now;
    wire        start_parse = q_en && !q_notfeed && q_portok;

    // ---- header lanes ----
    wire [15:0] cnt_d = {q_data[23:16], q_data[31:24]};          // bytes 18, 19 (beat 2)
    wire [63:0] hseq_d = {f_hseq_hi, q_data[7:0], q_data[15:8]};  // bytes 10..17 (beat 2)
    reg  [7:0]  mis0;                                             // beat 0: byte j differs
    integer     j0;
    always @* begin
        for (j0 = 0; j0 < 8; j0 = j0 + 1)
            mis0[j0] = q_lm[j0] && q_data[8 * j0 +: 8] != session[8 * j0 +: 8];
    end
    wire        mis1 = (f_lm89[0] && q_data[7:0] != session[71:64])
                    || (f_lm89[1] && q_data[15:8] != session[79:72]);
    wire        hdr_here = f_in_pkt && f_st == F_HDR && f_beat2 && f_hdr_len;
    wire        hdr_cnt0 = q_cnt0;
    wire        hdr_eos = q_cnt_eos;
    wire        hdr_live = hdr_here && !f_wrong && !f_badseq;
    wire        hdr_walk = hdr_live && !hdr_cnt0 && !hdr_eos;

    // ---- the length field at f_nxt ----
    wire        walk_en = (f_in_pkt && f_st == F_WALK) || hdr_walk;
    wire [2:0]  lb = f_nxt[2:0];
    wire        in_beat = f_nxt[15:3] == f_k;
    // per lane j, as if the length field started there: its two bytes, and whether the
    // next length field would fall in this beat too (j + 2 + length < 8)
    reg  [7:0]  hi_l, lo_l;
    reg  [7:0]  ov_l;                        // ... M runs past the packet
    integer     jg;
    always @* begin
        case (lb)
            3'd0: begin hi_l = q_data[7:0];   lo_l = q_data[15:8];  end
            3'd1: begin hi_l = q_data[15:8];  lo_l = q_data[23:16]; end
            3'd2: begin hi_l = q_data[23:16]; lo_l = q_data[31:24]; end
            3'd3: begin hi_l = q_data[31:24]; lo_l = q_data[39:32]; end
            3'd4: begin hi_l = q_data[39:32]; lo_l = q_data[47:40]; end
            3'd5: begin hi_l = q_data[47:40]; lo_l = q_data[55:48]; end
            3'd6: begin hi_l = q_data[55:48]; lo_l = q_data[63:56]; end
            default: begin hi_l = q_data[63:56]; lo_l = 8'd0; end
        endcase
        ov_l = 8'd0;
        for (jg = 0; jg < 7; jg = jg + 1)
            ov_l[jg] = {2'b00, q_data[8 * jg +: 8], q_data[8 * jg + 8 +: 8]} > f_rem;
    end
    wire [7:0]  hi_byte = f_split ? f_hi : hi_l;
    wire [7:0]  lo_byte = f_split ? q_data[7:0] : lo_l;
    wire [15:0] mlen = {hi_byte, lo_byte};
    wire        rem_ok = !f_rem[17];                          // both length bytes < n
    wire        len_here = walk_en && rem_ok && (f_split || (in_beat && lb != 3'd7));
    wire        cap_hi = walk_en && !f_split && in_beat && lb == 3'd7;
    wire [2:0]  plo = f_split ? 3'd0 : lb + 3'd1;             // lane of the low length byte
    // (the split case names its bytes: through mlen it would wait for the lane mux)
    wire        ov = f_split ? {2'b00, f_hi, q_data[7:0]} > f_rem : ov_l[lb];
    wire        m_start = len_here && !ov;
    wire [16:0] nxt_n = {1'b0, f_nxt2} + {1'b0, mlen};        // the next length field
    wire [16:0] end_n = {1'b0, f_nxt} + {1'b0, mlen} + 17'd1; // M's last byte
    wire [7:0]  end_l = {1'b0, q_end}, again_l = {1'b0, q_again};
    wire        m_end = f_split ? f_hi_zero && q_b0le7 : end_l[lb];
    wire        m_again = f_split ? f_hi_zero && q_b0le6 : again_l[lb];
    wire        is_last = hdr_walk ? q_cnt1 : f_left1;
    wire        repeat_pass = len_here && !is_last && m_again; // (a DROP repeats harmlessly)

    // ---- the open message O ----
    wire        o_here = f_in_pkt && f_open;
    wire        o_end = o_here && f_oend[15:3] == f_k;

    // ---- per lane, for B: O's lanes (up to O's last byte), the rest M's; offsets; types ----
    wire [3:0]  ts = {1'b0, plo} + 4'd1;                   // lane of M's type byte (8: next beat)
    wire [7:0]  type_o_now = (f_obase == 7'd0) ? q_data[7:0] : f_otype;
    reg  [7:0]  type_m_now;
    reg  [7:0]  own_o;
    reg  [55:0] off_l;
    integer     jo;
    always @* begin
        case (ts[2:0])
            3'd1: type_m_now = q_data[15:8];
            3'd2: type_m_now = q_data[23:16];
            3'd3: type_m_now = q_data[31:24];
            3'd4: type_m_now = q_data[39:32];
            3'd5: type_m_now = q_data[47:40];
            3'd6: type_m_now = q_data[55:48];
            3'd7: type_m_now = q_data[63:56];
            default: type_m_now = q_data[7:0];
        endcase
        for (jo = 0; jo < 8; jo = jo + 1) begin
            own_o[jo] = o_here && (!o_end || jo <= f_oend[2:0]);
            // M's offsets go negative (bit 6 set: not routed) before its type byte
            off_l[7 * jo +: 7] = own_o[jo] ? f_obase + jo : jo - {3'd0, ts};
        end
    end

    // ---- this pass ----
    wire        pass = q_valid && (q_first ? admit : 1'b1);
    assign      f_pop = pass && !repeat_pass;
    wire        eop = f_pop && q_last;

    // state after the pass
    reg  [1:0]  st_n;
    reg         open_n, trail_n;
    always @* begin
        st_n = f_st;
        trail_n = f_trail;
        if (hdr_here) begin
            if (f_wrong || f_badseq) st_n = F_DROP;
            else if (hdr_cnt0 || hdr_eos) begin
                st_n = F_DONE;
                trail_n = f_n > TP_MOLD_HEADER_BYTES;
            end else st_n = F_WALK;
        end
        if (len_here) begin
            if (ov) st_n = F_DROP;
            else if (is_last) begin
                st_n = F_DONE;
                trail_n = nxt_n < {1'b0, f_n};
            end
        end
        open_n = (m_start && !m_end) || (o_here && !o_end);
    end
    // how the packet ended (checked in B, from F's registers as the eop pass left them: the
    // next packet's first pass rewrites them only at the end of that cycle): a short header,
    // fewer messages than its count, a message cut by tlast, or bytes after the last message
    wire        b_bad_end = b_eop && !b_first && f_parse
                            && (f_st == F_HDR || f_st == F_WALK || (f_st == F_DONE && (f_trail || f_open)));

    always @(posedge clk) begin
        if (rst) begin
            f_in_pkt <= 1'b0; f_parse <= 1'b0; f_locf <= 1'b0; f_beat1 <= 1'b0; f_beat2 <= 1'b0;
            f_hdr_len <= 1'b0; f_wrong <= 1'b0; f_badseq <= 1'b0; f_split <= 1'b0;
            f_open <= 1'b0; f_left1 <= 1'b0; f_trail <= 1'b0; f_stalled <= 1'b0;
            f_st <= F_DROP; f_k <= 13'd0; f_n <= 16'd0; f_nxt <= 16'd0; f_nxt2 <= 16'd0;
            f_midx <= 16'd0; f_left <= 16'd0; f_oend <= 16'd0; f_omidx <= 16'd0;
            f_olen <= 16'd0; f_walked <= 16'd0; f_rem <= 18'd0; f_hi <= 8'd0; f_obase <= 7'd0;
            f_hi_zero <= 1'b0;
            f_recv <= 64'd0; f_sess <= 80'd0; f_hseq_hi <= 48'd0; f_lm89 <= 2'd0; f_otype <= 8'd0;
            locked <= 1'b0; session <= 80'd0;
        end else begin
            if (q_valid && q_first && admit) f_stalled <= 1'b0;
            else if (stall_now) f_stalled <= 1'b1;
            if (pass && q_first) begin
                // a packet's first beat: beat 0 of the header
                f_in_pkt <= !q_last;
                f_parse <= start_parse;
                f_locf <= q_locf;
                f_st <= start_parse ? F_HDR : F_DROP;
                f_k <= 13'd1;
                f_n <= q_len;
                f_recv <= q_recv;
                f_hdr_len <= q_len >= TP_MOLD_HEADER_BYTES;
                f_beat1 <= 1'b1; f_beat2 <= 1'b0;
                f_wrong <= locked && mis0 != 8'd0;
                f_badseq <= 1'b0;
                f_sess[63:0] <= q_data;
                f_lm89 <= q_lm[9:8];
                f_nxt <= TP_MOLD_HEADER_BYTES;
                f_nxt2 <= TP_MOLD_HEADER_BYTES + 2;
                f_rem <= {2'b00, q_len} - (TP_MOLD_HEADER_BYTES + 2);
                f_split <= 1'b0; f_open <= 1'b0; f_midx <= 16'd0; f_walked <= 16'd0;
                f_trail <= 1'b0;
            end else if (pass) begin
                if (f_pop) begin
                    f_in_pkt <= !q_last;
                    f_k <= f_k + 1'b1;
                    f_beat1 <= 1'b0;
                    f_beat2 <= f_beat1;
                end
                if (f_beat1) begin
                    // beat 1: session bytes 8, 9 and hseq bytes 10..15
                    if (locked && mis1) f_wrong <= 1'b1;
                    f_sess[79:64] <= q_data[15:0];
                    f_hseq_hi <= {q_data[23:16], q_data[31:24], q_data[39:32], q_data[47:40],
                                  q_data[55:48], q_data[63:56]};
                    f_badseq <= q_data[23:22] != 2'b00;
                end
                if (hdr_here && !f_wrong && !locked) begin
                    locked <= 1'b1;
                    session <= f_sess;
                end
                f_st <= st_n;
                f_trail <= trail_n;
                if (cap_hi) begin
                    f_split <= 1'b1;
                    f_hi <= q_data[63:56];
                    f_hi_zero <= q_data[63:56] == 8'd0;
                end else if (len_here) begin
                    f_split <= 1'b0;
                end
                if (m_start) begin
                    f_nxt <= nxt_n[15:0];
                    f_nxt2 <= nxt_n[15:0] + 16'd2;
                    f_rem <= f_rem - {2'b00, mlen} - 18'd2;
                    f_midx <= f_midx + 1'b1;
                    f_left <= (hdr_walk ? cnt_d : f_left) - 1'b1;
                    f_left1 <= hdr_walk ? q_cnt2 : f_left == 16'd2;
                end else if (hdr_walk) begin
                    f_left <= cnt_d;
                    f_left1 <= q_cnt1;
                end
                // the open message: M stays open, O ends, or O runs through this beat
                if (m_start && !m_end) begin
                    f_open <= 1'b1;
                    f_oend <= end_n[15:0];
                    f_omidx <= f_midx;
                    f_olen <= mlen;
                    f_obase <= 7'd7 - {4'd0, plo};
                end else if (o_end) begin
                    f_open <= 1'b0;
                end else if (o_here && f_pop) begin
                    f_obase <= f_obase[6] ? f_obase : f_obase + 7'd8;
                end
                if (len_here && !ts[3]) f_otype <= type_m_now;
                else if (o_here && f_obase == 7'd0) f_otype <= q_data[7:0];
                if (m_start && m_end) f_walked <= f_midx + 1'b1;
                else if (o_end) f_walked <= f_omidx + 1'b1;
            end
            // COMMAND RESET_SESSION (between packets, everything empty)
            if (cmd_now && command[TP_CMD_RESET_SESSION]) begin
                locked <= 1'b0;
                session <= 80'd0;
            end
        end
    end

    // the pass, described for B
    always @(posedge clk) begin
        if (rst) begin
            b_valid <= 1'b0; b_first <= 1'b0; b_eop <= 1'b0; b_hdr <= 1'b0;
            b_o_here <= 1'b0; b_o_end <= 1'b0; b_m <= 1'b0; b_m_end <= 1'b0;
            b_ev_in <= 1'b0; b_ev_disabled <= 1'b0; b_ev_notfeed <= 1'b0; b_ev_filtered <= 1'b0;
            b_ev_parsed <= 1'b0; b_ev_wrong <= 1'b0; b_ev_malpkt <= 1'b0; b_ev_hb <= 1'b0;
            b_ev_eos <= 1'b0; b_ev_ov <= 1'b0;
        end else begin
            b_valid <= pass;
            b_first <= pass && q_first;
            b_eop <= eop;
            b_hdr <= pass && hdr_live;
            b_o_here <= pass && o_here;
            b_o_end <= pass && o_end;
            b_m <= pass && m_start;
            b_m_end <= pass && m_start && m_end;
            b_ev_in <= pass && q_first;
            b_ev_disabled <= pass && q_first && !q_en;
            b_ev_notfeed <= pass && q_first && q_en && q_notfeed;
            b_ev_filtered <= pass && q_first && q_en && !q_notfeed && !q_portok;
            b_ev_parsed <= pass && q_first && start_parse;
            b_ev_wrong <= pass && hdr_here && f_wrong;
            b_ev_malpkt <= pass && ((hdr_here && !f_wrong && f_badseq) || (len_here && ov))
                           || (eop && q_first && start_parse);
            b_ev_hb <= pass && hdr_live && hdr_cnt0;
            b_ev_eos <= pass && hdr_live && hdr_eos;
            b_ev_ov <= pass && len_here && ov;
        end
        b_data <= q_data;
        b_len <= q_len;
        b_recv <= q_first ? q_recv : f_recv;
        b_locf <= q_first ? q_locf : f_locf;
        b_hseq <= hseq_d;
        b_own_o <= own_o;
        b_off <= off_l;
        b_type_o <= type_o_now;
        b_type_m <= type_m_now;
        b_o_midx <= f_omidx;
        b_o_len <= f_olen;
        b_m_midx <= f_midx;
        b_m_len <= mlen;
        b_walked <= (m_start && m_end) ? f_midx + 1'b1 : o_end ? f_omidx + 1'b1 : f_walked;
    end

    // =====================================================================================
    // B: lane routing. Per lane j (owner and offset from F): the record byte the field ROM
    // sends it to, c_dst[j] = {hit, byte}. Header arithmetic against `expected` (the next
    // expected seq, registered from C's sequence state).
    // =====================================================================================
    reg         c_first, c_eop, c_locf, c_hdr, c_o_end, c_m, c_m_end, c_o_here;
    reg  [63:0] c_data, c_recv, c_hseq, c_ecur;
    reg  [64:0] c_d1, c_d2;                   // hseq - expected, expected - hseq (bit 64: borrow)
    reg         c_ezero;
    reg  [7:0]  c_type_o, c_type_m;
    reg  [15:0] c_o_midx, c_o_len, c_m_midx, c_m_len, c_walked;
    reg  [55:0] c_dst;                        // 8 lanes x {hit, record byte[5:0]}
    reg  [7:0]  c_own_m;                      // lane j belongs to M (else O)

    reg  [55:0] dst_v;
    reg  [6:0]  off;
    reg  [6:0]  rd;
    integer     j1;
    always @* begin
        for (j1 = 0; j1 < 8; j1 = j1 + 1) begin
            off = b_off[7 * j1 +: 7];
            rd = tp_rom_dst(b_own_o[j1] ? b_type_o : b_type_m, off[5:0]);
            dst_v[7 * j1 +: 7] = {off != 7'd0 && !off[6] && rd[6], rd[5:0]};
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            c_valid <= 1'b0; c_first <= 1'b0; c_eop <= 1'b0; c_hdr <= 1'b0; c_o_end <= 1'b0;
            c_m <= 1'b0; c_m_end <= 1'b0; c_o_here <= 1'b0;
        end else begin
            c_valid <= b_valid; c_first <= b_first; c_eop <= b_eop; c_hdr <= b_hdr;
            c_o_end <= b_o_end; c_m <= b_m; c_m_end <= b_m_end; c_o_here <= b_o_here;
        end
        c_data <= b_data; c_recv <= b_recv; c_locf <= b_locf; c_hseq <= b_hseq;
        c_ecur <= expected;
        c_d1 <= {1'b0, b_hseq} - {1'b0, expected};
        c_d2 <= {1'b0, expected} - {1'b0, b_hseq};
        c_ezero <= expected == 64'd0;
        c_type_o <= b_type_o; c_type_m <= b_type_m;
        c_o_midx <= b_o_midx; c_o_len <= b_o_len; c_m_midx <= b_m_midx; c_m_len <= b_m_len;
        c_walked <= b_walked;
        c_dst <= dst_v; c_own_m <= ~b_own_o;
    end

    // =====================================================================================
    // C: record assembly and sequence state.
    //   acc        record bytes of the open message so far
    //   sq_live    the packet's header was accepted (its messages take numbers)
    //   sq_hseq    its first sequence number; sq_e0 the expected seq before its messages
    //   sq_ndup    leading messages below the expected seq (duplicates), saturated at 17 bits
    //   sq_wabs    sq_hseq + messages walked so far
    // expected (a module output) = the next expected seq, one cycle behind these.
    // =====================================================================================
    reg  [511:0] acc;
    reg          sq_live;
    reg  [63:0]  sq_hseq, sq_e0, sq_wabs;
    reg  [16:0]  sq_ndup;
    reg          d_first, d_eop, d_locf, d_o_done, d_m_done, d_gap;
    reg  [511:0] d_body;
    reg  [63:0]  d_recv, d_gap_seq, d_gap_n;
    reg  [7:0]   d_type_o;
    reg  [1:0]   d_cls_o, d_cls_m;             // type class (tp_msg_info)
    reg  [5:0]   d_flags_o;
    reg          d_short_o, d_short_m, d_zero_m;   // shorter than the type's spec; length 0
    wire [15:0]  info_o = tp_msg_info(c_type_o);
    wire [15:0]  info_m = tp_msg_info(c_type_m);
    reg  [15:0]  d_o_midx, d_o_len, d_m_midx, d_m_len;

    reg  [511:0] rec_o, rec_m;
    reg  [7:0]   ob, mb;
    reg          oh, mh;
    integer      d8, j2;
    always @* begin
        rec_o = acc;
        rec_m = 512'd0;
        for (d8 = 0; d8 < 64; d8 = d8 + 1) begin
            ob = 8'd0; mb = 8'd0; oh = 1'b0; mh = 1'b0;
            if (TP_ROM_TARGETS[d8]) begin
                for (j2 = 0; j2 < 8; j2 = j2 + 1) begin
                    if (c_dst[7 * j2 + 6] && c_dst[7 * j2 +: 6] == d8) begin
                        if (c_own_m[j2]) begin
                            mh = 1'b1;
                            mb = mb | c_data[8 * j2 +: 8];
                        end else begin
                            oh = 1'b1;
                            ob = ob | c_data[8 * j2 +: 8];
                        end
                    end
                end
            end
            if (oh) rec_o[8 * d8 +: 8] = ob;
            if (mh) rec_m[8 * d8 +: 8] = mb;
        end
    end

    wire c_gt = c_d2[64];                     // hseq > expected
    wire c_lt = c_d1[64];                     // hseq < expected
    wire [63:0] exp_now = (sq_live && sq_wabs > sq_e0) ? sq_wabs : sq_e0;

    always @(posedge clk) begin
        if (rst) begin
            acc <= 512'd0;
            sq_live <= 1'b0; sq_hseq <= 64'd0; sq_wabs <= 64'd0; sq_ndup <= 17'd0;
            sq_e0 <= control[TP_CTRL_ADOPT_FIRST_SEQ] ? 64'd0 : SEQ_INIT;
            expected <= control[TP_CTRL_ADOPT_FIRST_SEQ] ? 64'd0 : SEQ_INIT;
            d_valid <= 1'b0; d_first <= 1'b0; d_eop <= 1'b0; d_o_done <= 1'b0;
            d_m_done <= 1'b0; d_gap <= 1'b0;
        end else begin
            if (c_m && !c_m_end) acc <= rec_m;
            else if (c_o_here && !c_o_end) acc <= rec_o;
            expected <= exp_now;
            if (c_first) begin
                // a new packet: the previous one's outcome becomes its expected seq
                sq_live <= 1'b0;
                sq_e0 <= exp_now;
            end else if (c_hdr) begin
                sq_live <= 1'b1;
                sq_hseq <= c_hseq;
                sq_e0 <= (c_ezero || c_gt) ? c_hseq : c_ecur;          // adopt, or after the gap
                sq_ndup <= (!c_ezero && c_lt) ? (c_d2[63:17] != 47'd0 ? 17'h1FFFF : c_d2[16:0])
                                              : 17'd0;
            end
            if (c_valid) sq_wabs <= (c_hdr ? c_hseq : sq_hseq) + {48'd0, c_walked};
            if (cmd_now && command[TP_CMD_RESET_SESSION]) begin
                sq_live <= 1'b0;
                sq_e0 <= control[TP_CTRL_ADOPT_FIRST_SEQ] ? 64'd0 : SEQ_INIT;
                expected <= control[TP_CTRL_ADOPT_FIRST_SEQ] ? 64'd0 : SEQ_INIT;
            end
            d_valid <= c_valid; d_first <= c_first; d_eop <= c_eop;
            d_o_done <= c_o_end;
            d_m_done <= c_m_end;
            d_gap <= c_hdr && !c_ezero && c_gt;
        end
        d_body <= rec_o;
        d_recv <= c_recv; d_locf <= c_locf;
        d_gap_seq <= c_ecur; d_gap_n <= c_d1[63:0];
        d_type_o <= c_type_o;
        d_cls_o <= info_o[15:14]; d_flags_o <= info_o[13:8];
        d_short_o <= c_o_len < {8'd0, info_o[7:0]};
        d_cls_m <= info_m[15:14];
        d_short_m <= c_m_len < {8'd0, info_m[7:0]};
        d_zero_m <= c_m_len == 16'd0;
        d_o_midx <= c_o_midx; d_o_len <= c_o_len; d_m_midx <= c_m_midx; d_m_len <= c_m_len;
    end

    // =====================================================================================
    // D: classification of the messages that ended in this pass (O: any; M: a message that
    // started and ended in this pass, at most 6 bytes long, so never a record), the record.
    // =====================================================================================
    wire        dup_o = {1'b0, d_o_midx} < sq_ndup;
    wire        dup_m = {1'b0, d_m_midx} < sq_ndup;
    wire        unk_o = !dup_o && d_cls_o == TP_CLASS_UNDEFINED;
    wire        mal_o = !dup_o && !unk_o && d_short_o;
    wire        skip_o = !dup_o && !unk_o && !mal_o && d_cls_o != TP_CLASS_RECORD;
    wire        rec_ok = d_o_done && !dup_o && !unk_o && !mal_o && !skip_o;
    wire        unk_m = !dup_m && !d_zero_m && d_cls_m == TP_CLASS_UNDEFINED;
    wire        mal_m = !dup_m && !unk_m && (d_zero_m || d_short_m);
    wire        skip_m = !dup_m && !unk_m && !mal_m;

    reg          s1_valid, s1_eop, s1_locf;
    reg  [511:0] s1_rec;
    reg  [1:0]   s1_ev_msgs, s1_ev_dup, s1_ev_mal, s1_ev_unk, s1_ev_skip;
    reg          s1_ev_gap;
    reg  [63:0]  s1_ev_gapn;
    reg  [511:0] push_rec;
    always @* begin
        push_rec = 512'd0;
        if (d_gap) begin
            push_rec[8 * TP_EV_SEQ +: 64] = d_gap_seq;
            push_rec[8 * TP_EV_SHARES +: 64] = d_gap_n;
            push_rec[8 * TP_EV_FLAGS +: 32] = TP_FLAG_GAP;
        end else begin
            push_rec = d_body;
            push_rec[8 * TP_EV_SEQ +: 64] = sq_hseq + {48'd0, d_o_midx};
            push_rec[8 * TP_EV_MSG_TYPE +: 8] = d_type_o;
            push_rec[8 * TP_EV_FLAGS +: 32] = {26'd0, d_flags_o};
        end
        push_rec[8 * TP_EV_TS_RECV +: 64] = d_recv;
        push_rec[8 * TP_EV_VERSION +: 8] = TP_EVENT_VERSION;
    end

    always @(posedge clk) begin
        if (rst) begin
            s1_pass <= 1'b0; s1_valid <= 1'b0; s1_eop <= 1'b0;
            s1_ev_msgs <= 2'd0; s1_ev_dup <= 2'd0; s1_ev_mal <= 2'd0; s1_ev_unk <= 2'd0;
            s1_ev_skip <= 2'd0; s1_ev_gap <= 1'b0;
        end else begin
            s1_pass <= d_valid;
            s1_valid <= d_gap || rec_ok;
            s1_eop <= d_eop;
            s1_ev_msgs <= {1'b0, d_o_done} + {1'b0, d_m_done};
            s1_ev_dup <= {1'b0, d_o_done && dup_o} + {1'b0, d_m_done && dup_m};
            s1_ev_mal <= {1'b0, d_o_done && mal_o} + {1'b0, d_m_done && mal_m};
            s1_ev_unk <= {1'b0, d_o_done && unk_o} + {1'b0, d_m_done && unk_m};
            s1_ev_skip <= {1'b0, d_o_done && skip_o} + {1'b0, d_m_done && skip_m};
            s1_ev_gap <= d_gap;
        end
        s1_ev_gapn <= d_gap_n;
        s1_rec <= push_rec;
        s1_locf <= d_locf;
    end

    // =====================================================================================
    // S1 (bitmap read issued for s1_rec's locate) -> S2 (filter, FIFO full) -> FIFO write.
    // =====================================================================================
    reg          s2_valid, s2_eop, s2_locf;
    reg  [511:0] s2_rec;
    reg          pushed_open;                // a record of the packet now at S2 is in the FIFO
    wire [15:0]  s1_locate = s1_rec[8 * TP_EV_LOCATE +: 16];
    assign       bm_addr = s1_locate[15:5];
    wire [15:0]  s2_locate = s2_rec[8 * TP_EV_LOCATE +: 16];
    wire         s2_filtered = s2_locf && s2_locate != 16'd0 && !bm_word[s2_locate[4:0]];
    // the write issued last cycle is not in fifo_level yet
    wire         s2_full = {1'b0, fifo_level} + {{LEVEL_W{1'b0}}, rec_write} >= FIFO_DEPTH;
    wire         s2_write = s2_valid && !s2_filtered && !s2_full;

    always @(posedge clk) begin
        if (rst) begin
            s2_pass <= 1'b0; s2_valid <= 1'b0; s2_eop <= 1'b0; s2_locf <= 1'b0; s2_rec <= 512'd0;
            pushed_open <= 1'b0; overflow <= 1'b0; high_water <= 32'd0; room14 <= 17'd0;
            rec_write <= 1'b0; rec_data <= 512'd0; rec_last <= 1'b0; rec_mark_last <= 1'b0;
        end else begin
            room14 <= ({1'b0, fifo_level} + INFLIGHT >= FIFO_DEPTH) ? 17'd0
                      : (FIFO_DEPTH - INFLIGHT - fifo_level) * 14;
            s2_pass <= s1_pass; s2_valid <= s1_valid; s2_eop <= s1_eop; s2_locf <= s1_locf;
            s2_rec <= s1_rec;
            rec_write <= s2_write;
            rec_data <= s2_rec;
            rec_last <= s2_write && s2_eop;
            rec_mark_last <= s2_eop && !s2_write && pushed_open;
            if (s2_eop) pushed_open <= 1'b0;
            else if (s2_write) pushed_open <= 1'b1;
            if (s2_valid && !s2_filtered && s2_full) overflow <= 1'b1;
            if (high_water < fifo_level) high_water <= fifo_level;
            if (cmd_now) begin
                if (command[TP_CMD_RESET_COUNTERS]) high_water <= fifo_level;
                if (command[TP_CMD_CLEAR_OVERFLOW]) overflow <= 1'b0;
            end
        end
    end

    // =====================================================================================
    // Counters: increments from registered stage flags (b_ev_*: F's packet events, s1_ev_*:
    // D's message events, S2's write decision), added to 64-bit counters.
    // =====================================================================================
    reg [63:0] cnt [0:TP_N_COUNTERS-1];
    genvar gi;
    generate
        for (gi = 0; gi < TP_N_COUNTERS; gi = gi + 1) begin : g_cnt
            assign counters_flat[64 * gi +: 64] = cnt[gi];
        end
    endgenerate

    reg [63:0] inc [0:TP_N_COUNTERS-1];
    integer k;
    always @* begin
        for (k = 0; k < TP_N_COUNTERS; k = k + 1) inc[k] = 64'd0;
        inc[TP_CNT_PACKETS_IN] = b_ev_in;
        inc[TP_CNT_PACKETS_DISABLED] = b_ev_disabled;
        inc[TP_CNT_PACKETS_NOT_FEED] = b_ev_notfeed;
        inc[TP_CNT_PACKETS_FILTERED] = b_ev_filtered;
        inc[TP_CNT_PACKETS] = b_ev_parsed;
        inc[TP_CNT_BEATS_IN] = b_ev_parsed ? {51'd0, b_len[15:3]} + (b_len[2:0] != 3'd0) : 64'd0;
        inc[TP_CNT_BACKPRESSURE_STALLS] = stall_now && !f_stalled;
        inc[TP_CNT_MESSAGES] = {62'd0, s1_ev_msgs} + b_ev_ov;
        inc[TP_CNT_DUPLICATES] = s1_ev_dup;
        inc[TP_CNT_MALFORMED_MESSAGES] = {62'd0, s1_ev_mal} + b_ev_ov;
        inc[TP_CNT_UNKNOWN_TYPES] = s1_ev_unk;
        inc[TP_CNT_SKIPPED_TYPES] = s1_ev_skip;
        inc[TP_CNT_MALFORMED_PACKETS] = b_ev_malpkt || b_bad_end;
        inc[TP_CNT_WRONG_SESSION] = b_ev_wrong;
        inc[TP_CNT_HEARTBEATS] = b_ev_hb;
        inc[TP_CNT_END_OF_SESSION] = b_ev_eos;
        inc[TP_CNT_GAPS] = s1_ev_gap;
        inc[TP_CNT_GAP_MESSAGES] = s1_ev_gap ? s1_ev_gapn : 64'd0;
        inc[TP_CNT_MESSAGES_OUT] = s2_write;
        inc[TP_CNT_LOCATE_FILTERED] = s2_valid && s2_filtered;
        inc[TP_CNT_FIFO_DROPPED] = s2_valid && !s2_filtered && s2_full;
        inc[TP_CNT_RECORDS_C2H] = c2h_take;
        inc[TP_CNT_INGRESS_OVERRUN] = overrun;
    end

    // Increments are registered (inc_r) and the RESET_COUNTERS clear with them (clear_r), so
    // the events of the strobe's cycle count after the reset and those before it before, as
    // if added in the same cycle.
    reg [63:0] inc_r [0:TP_N_COUNTERS-1];
    reg        clear_r;
    integer c;
    always @(posedge clk) begin
        clear_r <= !rst && cmd_now && command[TP_CMD_RESET_COUNTERS];
        for (c = 0; c < TP_N_COUNTERS; c = c + 1) begin
            inc_r[c] <= rst ? 64'd0 : inc[c];
            cnt[c] <= (rst || clear_r ? 64'd0 : cnt[c]) + (rst ? 64'd0 : inc_r[c]);
        end
    end
endmodule

`default_nettype wire
