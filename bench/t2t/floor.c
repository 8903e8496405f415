/* The tick-to-trade floor: the least a program can do between the venue's ITCH packet and
 * the order that answers it on this host.
 *
 * It spins on a non-blocking UDP socket (the venue's MoldUDP64/ITCH feed), walks each
 * packet's message lengths, and when a message is the marked trigger (ITCH 'A' Add Order
 * of the marker's odd-lot size on one of the quiet trigger instruments, locates LO..HI) sends
 * one pre-built OUCH 5.0 Enter Order, in a
 * SoupBinTCP 4.1 unsequenced-data packet, on a TCP socket that is already logged in: only
 * the UserRefNum (+1 per order, must rise) and the ClOrdID (the trigger's MoldUDP64 sequence
 * number, 14 ASCII digits: how the venue matches answer to trigger) are patched in. No
 * decoding beyond that, no book, no strategy. tickpath's wall-to-wall figure is read as a
 * ratio to this one's, measured by the same venue in the same run.
 *
 * Both sockets are inherited (the Python harness connects, logs in and binds); the venue's
 * acknowledgements are read and discarded; a SoupBinTCP client heartbeat goes out after
 * 1 s without sending. Exits after SECONDS or when the venue closes the TCP session, and
 * prints one JSON line of counts.
 *
 * usage: floor UDP_FD TCP_FD LOCATE_LO LOCATE_HI SHARES SECONDS UREF0 ORDER_HEX
 *   ORDER_HEX: the whole SoupBinTCP packet (u16 length, 'U', OUCH 'O' message) in hex
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
#define ITCH_ADD_BYTES 36
#define UREF_AT 4               /* u16 len, 'U', 'O', then UserRefNum */
#define CLORDID_AT (3 + 31)     /* ClOrdID at OUCH offset 31, 14 bytes */
#define MAX_ORDER 512

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static int64_t mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* write all of buf: a partial send is finished, never dropped (the socket is non-blocking) */
static int send_all(int fd, const uint8_t *buf, size_t n) {
    size_t off = 0;
    while (off < n) {
        ssize_t k = send(fd, buf + off, n - off, MSG_NOSIGNAL);
        if (k > 0) off += (size_t)k;
        else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: floor UDP_FD TCP_FD LOCATE_LO LOCATE_HI SHARES SECONDS UREF0 ORDER_HEX\n");
        return 2;
    }
    int ufd = atoi(argv[1]), tfd = atoi(argv[2]);
    uint64_t loc_lo = strtoull(argv[3], 0, 10), loc_hi = strtoull(argv[4], 0, 10);
    uint64_t shares = strtoull(argv[5], 0, 10);
    double seconds = atof(argv[6]);
    uint32_t uref = (uint32_t)strtoul(argv[7], 0, 10);
    const char *hex = argv[8];
    size_t olen = strlen(hex) / 2;
    if (olen < CLORDID_AT + 14 || olen > MAX_ORDER) {
        fprintf(stderr, "floor: ORDER_HEX of %zu bytes is not an OUCH Enter Order packet\n", olen);
        return 2;
    }
    uint8_t order[MAX_ORDER];
    for (size_t i = 0; i < olen; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) { fprintf(stderr, "floor: bad ORDER_HEX\n"); return 2; }
        order[i] = (uint8_t)v;
    }
    static const uint8_t heartbeat[3] = {0, 1, 'R'};
    uint8_t pkt[65536], sink[65536];
    uint64_t packets = 0, messages = 0, triggers = 0, sent = 0, malformed = 0;
    int64_t end = mono_ns() + (int64_t)(seconds * 1e9), last_send = mono_ns();
    int closed = 0;
    for (uint64_t spin = 0;; spin++) {
        ssize_t n = recv(ufd, pkt, sizeof pkt, MSG_DONTWAIT);
        if (n >= MOLD_HEADER) {
            packets++;
            uint64_t seq = be(pkt + 10, 8), count = be(pkt + 18, 2);
            size_t p = MOLD_HEADER;
            for (uint64_t m = 0; m < count; m++) {
                if (p + 2 > (size_t)n) { malformed++; break; }
                size_t len = (size_t)be(pkt + p, 2);
                p += 2;
                if (p + len > (size_t)n) { malformed++; break; }
                const uint8_t *msg = pkt + p;
                messages++;
                uint64_t loc = len >= ITCH_ADD_BYTES ? be(msg + 1, 2) : 0;
                if (len >= ITCH_ADD_BYTES && msg[0] == 'A' && loc >= loc_lo && loc <= loc_hi &&
                    be(msg + 20, 4) == shares) {
                    triggers++;
                    uref++;
                    order[UREF_AT] = uref >> 24; order[UREF_AT + 1] = uref >> 16;
                    order[UREF_AT + 2] = uref >> 8; order[UREF_AT + 3] = uref;
                    uint64_t s = seq + m;
                    for (int d = 13; d >= 0; d--) { order[CLORDID_AT + d] = '0' + s % 10; s /= 10; }
                    if (send_all(tfd, order, olen) != 0) { closed = 1; break; }
                    sent++;
                    last_send = mono_ns();
                }
                p += len;
            }
        }
        if ((spin & 1023) == 0) {           /* the slow part, not on every spin */
            ssize_t k = recv(tfd, sink, sizeof sink, MSG_DONTWAIT);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed = 1;
            int64_t now = mono_ns();
            if (now - last_send > 1000000000) {
                if (send_all(tfd, heartbeat, sizeof heartbeat) != 0) closed = 1;
                last_send = now;
            }
            if (now >= end) break;
        }
        if (closed) break;
    }
    printf("{\"packets\": %llu, \"messages\": %llu, \"triggers\": %llu, \"orders_sent\": %llu, "
           "\"malformed\": %llu, \"venue_closed\": %s, \"last_uref\": %u}\n",
           (unsigned long long)packets, (unsigned long long)messages, (unsigned long long)triggers,
           (unsigned long long)sent, (unsigned long long)malformed, closed ? "true" : "false", uref);
    return 0;
}
