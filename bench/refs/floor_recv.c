/* The receive floor: the least a program can do to receive tickpath's feed on this host.
 *
 * It spins on a non-blocking UDP socket with recvmmsg(2) — the same batch size and slot size
 * as the kernel backend — walks each MoldUDP64 packet's message lengths (every length checked
 * before a read), and for each ITCH message reads only its timestamp (bytes 5..10, ns since
 * UTC midnight: the sender's scheduled send time) and CLOCK_REALTIME, exactly as tickpath's
 * pipeline does at completion: latency = now - (MIDNIGHT_NS + ts), a send stamped before
 * midnight and received after it folded back by a day. Messages below WARMUP_SEQ (MoldUDP64
 * sequence numbers) or with a zero timestamp are not recorded, like the pipeline's. No decoding beyond that, no book, no indicators, no PAUSE
 * between polls: tickpath's kernel path is read as a ratio to this one, in the same run.
 *
 * The socket is inherited (the Python harness binds it like the kernel backend does). Exits
 * once N_EXPECTED messages arrived or after DEADLINE_S seconds; writes the recorded
 * latencies (int64 ns, native order) to OUT_PATH and prints one JSON line of counts.
 *
 * usage: floor-recv UDP_FD N_EXPECTED DEADLINE_S MIDNIGHT_NS WARMUP_SEQ SLOTS SLOT_BYTES OUT_PATH
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MOLD_HEADER 20          /* session 10, sequence u64, count u16 */
#define ITCH_TS_END 11          /* type 1, locate 2, tracking 2, timestamp 6 */
#define DAY_NS 86400000000000LL
#define MAX_SLOTS 1024

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static int64_t clock_ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: floor-recv UDP_FD N_EXPECTED DEADLINE_S MIDNIGHT_NS WARMUP_SEQ SLOTS "
                        "SLOT_BYTES OUT_PATH\n");
        return 2;
    }
    int fd = atoi(argv[1]);
    uint64_t n_expected = strtoull(argv[2], 0, 10);
    double deadline_s = atof(argv[3]);
    int64_t midnight_ns = strtoll(argv[4], 0, 10);
    uint64_t warmup_seq = strtoull(argv[5], 0, 10);
    long slots = atol(argv[6]), slot_bytes = atol(argv[7]);
    const char *out_path = argv[8];
    if (slots < 1 || slots > MAX_SLOTS || slot_bytes < MOLD_HEADER || slot_bytes > 65536 || n_expected < 1) {
        fprintf(stderr, "floor-recv: SLOTS 1..%d, SLOT_BYTES %d..65536 and N_EXPECTED >= 1 required\n",
                MAX_SLOTS, MOLD_HEADER);
        return 2;
    }
    /* everything allocated and touched before the first packet: no page fault while measuring */
    uint8_t *buf = calloc((size_t)slots, (size_t)slot_bytes);
    int64_t *lat = calloc(n_expected, sizeof *lat);
    struct mmsghdr *hdr = calloc((size_t)slots, sizeof *hdr);
    struct iovec *iov = calloc((size_t)slots, sizeof *iov);
    if (!buf || !lat || !hdr || !iov) { fprintf(stderr, "floor-recv: out of memory\n"); return 2; }
    memset(lat, 0xff, n_expected * sizeof *lat);
    memset(buf, 0, (size_t)slots * (size_t)slot_bytes);
    for (long i = 0; i < slots; i++) {
        iov[i].iov_base = buf + i * slot_bytes;
        iov[i].iov_len = (size_t)slot_bytes;
        hdr[i].msg_hdr.msg_iov = &iov[i];
        hdr[i].msg_hdr.msg_iovlen = 1;
    }
    uint64_t received = 0, recorded = 0, packets = 0, polls = 0, empty_polls = 0;
    uint64_t gaps = 0, gap_messages = 0, duplicates = 0, malformed = 0, truncated = 0, errors = 0;
    uint64_t next_seq = 0;
    int64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    int64_t end = clock_ns(CLOCK_MONOTONIC) + (int64_t)(deadline_s * 1e9);
    while (received < n_expected) {
        polls++;
        int n = recvmmsg(fd, hdr, (unsigned)slots, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            empty_polls++;
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) errors++;
            if ((empty_polls & 4095) == 0 && clock_ns(CLOCK_MONOTONIC) >= end) break;
            continue;
        }
        for (int i = 0; i < n; i++) {
            const uint8_t *pkt = buf + (size_t)i * (size_t)slot_bytes;
            size_t len = hdr[i].msg_len;
            packets++;
            if (hdr[i].msg_hdr.msg_flags & MSG_TRUNC) { truncated++; continue; }
            if (len < MOLD_HEADER) { malformed++; continue; }
            uint64_t seq = be(pkt + 10, 8), count = be(pkt + 18, 2);
            if (count == 0 || count == 0xFFFF) continue;      /* heartbeat / end of session */
            if (next_seq && seq > next_seq) { gaps++; gap_messages += seq - next_seq; }
            else if (next_seq && seq < next_seq) { duplicates += count; continue; }
            next_seq = seq + count;
            size_t p = MOLD_HEADER;
            for (uint64_t m = 0; m < count; m++) {
                if (p + 2 > len) { malformed++; break; }
                size_t ml = (size_t)be(pkt + p, 2);
                p += 2;
                if (ml < ITCH_TS_END || p + ml > len) { malformed++; break; }
                int64_t ts = (int64_t)be(pkt + p + 5, 6);
                received++;
                if (ts != 0 && seq + m >= warmup_seq && recorded < n_expected) {
                    int64_t d = clock_ns(CLOCK_REALTIME) - (midnight_ns + ts);
                    lat[recorded++] = d < -DAY_NS / 2 ? d + DAY_NS : d;
                }
                p += ml;
            }
        }
    }
    double cpu_s = (clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0) / 1e9;
    FILE *f = fopen(out_path, "wb");
    if (!f || fwrite(lat, sizeof *lat, recorded, f) != recorded || fclose(f) != 0) {
        fprintf(stderr, "floor-recv: cannot write %s: %s\n", out_path, strerror(errno));
        return 3;
    }
    printf("{\"received\": %llu, \"recorded\": %llu, \"packets\": %llu, \"polls\": %llu, "
           "\"empty_polls\": %llu, \"gaps\": %llu, \"gap_messages\": %llu, \"duplicates\": %llu, "
           "\"malformed\": %llu, \"truncated\": %llu, \"recv_errors\": %llu, \"cpu_s\": %.6f}\n",
           (unsigned long long)received, (unsigned long long)recorded, (unsigned long long)packets,
           (unsigned long long)polls, (unsigned long long)empty_polls, (unsigned long long)gaps,
           (unsigned long long)gap_messages, (unsigned long long)duplicates,
           (unsigned long long)malformed, (unsigned long long)truncated, (unsigned long long)errors, cpu_s);
    return 0;
}
