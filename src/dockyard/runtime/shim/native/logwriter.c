/* The container's log in the formats dockyard.runtime.logformat defines: json-file and local records, 16 KiB partial
 * lines, one timestamp per read, rotation to path.1 … path.N-1. The daemon's reader
 * (dockyard.containers.logs) reads these files, so every byte of the format matters. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "monitor.h"

#define MAX_LINE (16 * 1024) /* a longer line is logged as partial records, like docker's 16K buffer */

void diag(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t ignored = write(2, line, (size_t)n);
    (void)ignored;
}

int64_t now_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void format_rfc3339(char out[40], int64_t ns, bool trim)
{
    time_t secs = (time_t)(ns / 1000000000);
    long frac = (long)(ns % 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!trim || frac) {
        n += (size_t)snprintf(out + n, 40 - n, ".%09ld", frac);
        if (trim)
            while (out[n - 1] == '0')
                n--;
    }
    out[n++] = 'Z';
    out[n] = '\0';
}

/* ---- JSON string escaping ---- */

/* One UTF-8 sequence: its length and code point, or U+FFFD for the maximal invalid subpart (as Python's
 * decoder with errors="replace" does). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *cp = 0xFFFD;
            return i;
        }
        lo = 0x80;
        hi = 0xBF;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return need + 1;
}

static char *put_u4(char *o, uint32_t v)
{
    static const char hex[] = "0123456789abcdef";
    *o++ = '\\';
    *o++ = 'u';
    for (int shift = 12; shift >= 0; shift -= 4)
        *o++ = hex[(v >> shift) & 0xF];
    return o;
}

int json_escape(struct buf *out, const char *data, size_t n, bool ascii_only)
{
    if (buf_reserve(out, n * 6) < 0) /* worst case: every byte a \u00XX escape */
        return -1;
    const unsigned char *s = (const unsigned char *)data;
    char *o = out->data + out->len;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c < 0x80) {
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            default: o = put_u4(o - 1, c);
            }
            i++;
            continue;
        }
        uint32_t cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (ascii_only) {
            if (cp > 0xFFFF) {
                cp -= 0x10000;
                o = put_u4(o, 0xD800 | (cp >> 10));
                o = put_u4(o, 0xDC00 | (cp & 0x3FF));
            } else {
                o = put_u4(o, cp);
            }
        } else if (cp == 0xFFFD && !(len == 3 && s[i] == 0xEF)) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            memcpy(o, s + i, len);
            o += len;
        }
        i += len;
    }
    out->len = (size_t)(o - out->data);
    return 0;
}

/* ---- the log file ---- */

static int mkdir_parents(const char *path)
{
    char dir[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(dir))
        return -1;
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int open_live(struct log_writer *lw)
{
    lw->fd = open(lw->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    return lw->fd < 0 ? -1 : 0;
}

int log_open(struct log_writer *lw, enum log_driver driver, const char *path, int64_t max_size, int max_file)
{
    memset(lw, 0, sizeof(*lw));
    lw->fd = -1;
    lw->driver = driver;
    lw->path = path;
    lw->max_size = max_size;
    lw->max_file = max_file < 1 ? 1 : max_file;
    if (driver == LOG_NONE)
        return 0;
    struct stat st;
    if (mkdir_parents(path) < 0 || open_live(lw) < 0 || fstat(lw->fd, &st) < 0)
        return -1;
    lw->size = st.st_size;
    return 0;
}

int64_t log_size(const struct log_writer *lw)
{
    return lw->fd < 0 ? -1 : lw->size;
}

static void report_failure(struct log_writer *lw, const char *what)
{
    if (!lw->failed)
        diag("log write failed, dropping log lines: %s: %s", what, strerror(errno));
    lw->failed = true;
}

static void rotate(struct log_writer *lw)
{
    char older[PATH_MAX + 16], newer[PATH_MAX + 16];
    close(lw->fd);
    lw->fd = -1;
    if (lw->max_file > 1) {
        for (int n = lw->max_file - 1; n > 1; n--) {
            snprintf(older, sizeof(older), "%s.%d", lw->path, n - 1);
            snprintf(newer, sizeof(newer), "%s.%d", lw->path, n);
            if (rename(older, newer) < 0 && errno != ENOENT)
                report_failure(lw, "rotate");
        }
        snprintf(newer, sizeof(newer), "%s.1", lw->path);
        if (rename(lw->path, newer) < 0)
            report_failure(lw, "rotate");
    } else if (truncate(lw->path, 0) < 0) {
        report_failure(lw, "truncate");
    }
    if (open_live(lw) < 0)
        report_failure(lw, "reopen");
    lw->size = 0;
}

static void file_write(struct log_writer *lw, const char *data, size_t n)
{
    if (lw->max_size && lw->size && lw->size + (int64_t)n > lw->max_size)
        rotate(lw);
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(lw->fd, data + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            report_failure(lw, "write");
            return;
        }
        done += (size_t)w;
    }
    lw->size += (int64_t)n;
}

/* Records of one read: encoded into one buffer (one write(2)), with their ends kept for rotation. */
struct batch {
    int stream;
    int64_t now;
    struct buf out;
    struct buf ends; /* size_t end offset of each record */
    char tail[96];
    size_t tail_len;
};

static void batch_begin(struct log_writer *lw, struct batch *b, int stream)
{
    memset(b, 0, sizeof(*b));
    b->stream = stream;
    b->now = now_realtime_ns();
    if (lw->driver == LOG_JSON) {
        char when[40];
        format_rfc3339(when, b->now, true);
        b->tail_len = (size_t)snprintf(b->tail, sizeof(b->tail), "\",\"stream\":\"%s\",\"time\":\"%s\"}\n",
                                       stream == STREAM_STDERR ? "stderr" : "stdout", when);
    }
}

static void put_be(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xFF);
}

static void batch_add(struct log_writer *lw, struct batch *b, const char *piece, size_t n)
{
    int rc;
    if (lw->driver == LOG_JSON) {
        rc = buf_append(&b->out, "{\"log\":\"", 8);
        rc = rc ?: json_escape(&b->out, piece, n, false);
        rc = rc ?: buf_append(&b->out, b->tail, b->tail_len);
    } else { /* local: >BQI head, payload, >I length */
        unsigned char head[13], tail[4];
        head[0] = (unsigned char)b->stream;
        put_be(head + 1, (uint64_t)b->now, 8);
        put_be(head + 9, n, 4);
        put_be(tail, n, 4);
        rc = buf_append(&b->out, head, sizeof(head));
        rc = rc ?: buf_append(&b->out, piece, n);
        rc = rc ?: buf_append(&b->out, tail, sizeof(tail));
    }
    size_t end = b->out.len;
    if (rc == 0)
        rc = buf_append(&b->ends, &end, sizeof(end));
    if (rc < 0)
        diag("out of memory encoding a log record");
}

static void batch_commit(struct log_writer *lw, struct batch *b)
{
    size_t total = b->out.len;
    if (total && lw->max_size && lw->size + (int64_t)total > lw->max_size) {
        size_t start = 0, count = b->ends.len / sizeof(size_t);
        for (size_t i = 0; i < count; i++) { /* crossing the size limit: rotate between records */
            size_t end;
            memcpy(&end, b->ends.data + i * sizeof(size_t), sizeof(end));
            file_write(lw, b->out.data + start, end - start);
            start = end;
        }
    } else if (total) {
        file_write(lw, b->out.data, total);
    }
    buf_free(&b->out);
    buf_free(&b->ends);
}

void log_write(struct log_writer *lw, int stream, const char *data, size_t n)
{
    if (lw->driver == LOG_NONE || lw->path == NULL)
        return;
    struct buf *pend = &lw->pending[stream];
    const char *d = data;
    size_t len = n;
    bool from_pending = buf_size(pend) > 0;
    if (from_pending) {
        if (buf_append(pend, data, n) < 0)
            return;
        d = buf_head(pend);
        len = buf_size(pend);
    }
    const char *last_nl = memrchr(d, '\n', len);
    size_t complete = last_nl ? (size_t)(last_nl - d) + 1 : 0;
    size_t pos = 0;
    struct batch b;
    batch_begin(lw, &b, stream);
    while (pos < complete) {
        const char *nl = memchr(d + pos, '\n', complete - pos);
        size_t line_len = (size_t)(nl - (d + pos));
        size_t i = 0;
        while (line_len - i > MAX_LINE) {
            batch_add(lw, &b, d + pos + i, MAX_LINE);
            i += MAX_LINE;
        }
        batch_add(lw, &b, d + pos + i, line_len - i + 1);
        pos += line_len + 1;
    }
    while (len - pos >= MAX_LINE) {
        batch_add(lw, &b, d + pos, MAX_LINE);
        pos += MAX_LINE;
    }
    batch_commit(lw, &b);
    if (from_pending) { /* keep only the unfinished rest, in a right-sized buffer */
        struct buf rest = {0};
        buf_append(&rest, d + pos, len - pos);
        buf_free(pend);
        *pend = rest;
    } else {
        buf_append(pend, d + pos, len - pos);
    }
}

void log_close(struct log_writer *lw)
{
    if (lw->fd >= 0) {
        for (int stream = STREAM_STDOUT; stream <= STREAM_STDERR; stream++) {
            struct buf *pend = &lw->pending[stream];
            if (buf_size(pend) == 0)
                continue;
            struct batch b;
            batch_begin(lw, &b, stream);
            batch_add(lw, &b, buf_head(pend), buf_size(pend));
            batch_commit(lw, &b);
        }
        close(lw->fd);
        lw->fd = -1;
    }
    for (int stream = 0; stream < 3; stream++)
        buf_free(&lw->pending[stream]);
}
