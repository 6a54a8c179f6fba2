/* client_addr.c — who is asking: the peer address of a connection, as text
 * for sessions (client_ip), logs and the login limits; behind a trusted
 * reverse proxy, the client the proxy names in X-Forwarded-For. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* An address reduced to what a CIDR compares: IPv4-mapped IPv6 is IPv4. */
struct ip {
    int family;
    unsigned char a[16];
};

static bool ip_from_sockaddr(const struct sockaddr *sa, struct ip *out)
{
    if (!sa) return false;
    if (sa->sa_family == AF_INET) {
        out->family = AF_INET;
        memcpy(out->a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            out->family = AF_INET;
            memcpy(out->a, &a->s6_addr[12], 4);
        } else {
            out->family = AF_INET6;
            memcpy(out->a, a, 16);
        }
        return true;
    }
    return false;
}

/* Parses one address of len bytes (IPv6 may be bracketed). */
static bool ip_parse(const char *s, size_t len, struct ip *out)
{
    char buf[INET6_ADDRSTRLEN + 2];
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') s++, len -= 2;
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    if (inet_pton(AF_INET, buf, out->a) == 1) {
        out->family = AF_INET;
        return true;
    }
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) != 1) return false;
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = a6};
    return ip_from_sockaddr((const struct sockaddr *)&sin6, out);
}

static void ip_format(const struct ip *ip, char *out, size_t size)
{
    if (!inet_ntop(ip->family, ip->a, out, (socklen_t)size)) out[0] = 0;
}

bool cidr_parse(const char *text, size_t len, struct cidr *out)
{
    const char *slash = memchr(text, '/', len);
    struct ip ip;
    if (!ip_parse(text, slash ? (size_t)(slash - text) : len, &ip)) return false;
    int max = ip.family == AF_INET ? 32 : 128, bits = max;
    if (slash) {
        const char *d = slash + 1, *end = text + len;
        if (d == end || end - d > 3) return false;
        bits = 0;
        for (; d < end; d++) {
            if (*d < '0' || *d > '9') return false;
            bits = bits * 10 + (*d - '0');
        }
        if (bits > max) return false;
    }
    out->family = ip.family;
    out->bits = bits;
    memset(out->addr, 0, sizeof out->addr);
    for (int i = 0; i < max / 8; i++) {
        int keep = bits - i * 8;
        unsigned char mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
        out->addr[i] = ip.a[i] & mask;
    }
    return true;
}

static bool cidr_has(const struct cidr *c, const struct ip *ip)
{
    if (c->family != ip->family) return false;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, ip->a, (size_t)full) != 0) return false;
    if (!rest) return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (ip->a[full] & mask) == c->addr[full];
}

static bool trusted(const struct ip *ip)
{
    const struct server_config *cfg = server_config();
    for (int i = 0; cfg && i < cfg->n_proxies; i++)
        if (cidr_has(&cfg->trusted_proxies[i], ip)) return true;
    return false;
}

bool client_addr_trusted(const struct sockaddr *sa)
{
    struct ip ip;
    return ip_from_sockaddr(sa, &ip) && trusted(&ip);
}

/* Every X-Forwarded-For header in the order received (a proxy may add its
 * own line instead of appending to the client's). */
#define XFF_MAX 8
struct xff {
    const char *v[XFF_MAX];
    int n;
};

static enum MHD_Result collect_xff(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct xff *x = cls;
    if (strcasecmp(key, "X-Forwarded-For") != 0 || !value) return MHD_YES;
    if (x->n == XFF_MAX) { /* keep the right-most ones: they are the proxies' */
        memmove(x->v, x->v + 1, sizeof x->v[0] * (XFF_MAX - 1));
        x->n--;
    }
    x->v[x->n++] = value;
    return MHD_YES;
}

/* Walks the forwarded addresses right to left from a trusted peer: each
 * trusted hop passes on to the one before it; the first address that is
 * not a trusted proxy is the client. A malformed entry ends the walk at
 * the last trusted hop, which is then the best that is known. */
static void forwarded_client(struct MHD_Connection *conn, struct ip *client)
{
    struct xff x = {.n = 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_xff, &x);
    for (int h = x.n - 1; h >= 0; h--) {
        const char *v = x.v[h];
        size_t end = strlen(v);
        for (;;) {
            size_t start = end;
            while (start > 0 && v[start - 1] != ',')
                start--;
            size_t b = start, e = end;
            while (b < e && (v[b] == ' ' || v[b] == '\t'))
                b++;
            while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
                e--;
            if (e > b) { /* an empty list item is skipped */
                struct ip ip;
                if (!ip_parse(v + b, e - b, &ip)) return;
                *client = ip;
                if (!trusted(&ip)) return;
            }
            if (start == 0) break;
            end = start - 1;
        }
    }
}

void request_client_ip(const struct req *r, char *out, size_t size)
{
    out[0] = 0;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    struct ip ip;
    if (!ci || !ip_from_sockaddr(ci->client_addr, &ip)) return;
    if (trusted(&ip)) forwarded_client(r->conn, &ip);
    ip_format(&ip, out, size);
}
