/* dockyard-monitor: shared declarations of the container monitor's parts.
 *
 * buf.c      growable byte buffers (allocated on demand, freed when emptied)
 * logwriter.c the json-file / local log drivers with rotation, and JSON string escaping
 * command.c  the tolerant scanner for the one-line JSON commands on shim.sock
 * monitor.c  the poll loop: init stdio, clients, reaping, exit.json
 */
#ifndef DOCKYARD_MONITOR_H
#define DOCKYARD_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- buf.c ---- */
struct buf {
    char *data;
    size_t off; /* first unconsumed byte */
    size_t len; /* end of the held bytes */
    size_t cap;
};

static inline size_t buf_size(const struct buf *b) { return b->len - b->off; }
static inline const char *buf_head(const struct buf *b) { return b->data + b->off; }
int buf_append(struct buf *b, const void *data, size_t n);
int buf_puts(struct buf *b, const char *s);
/* room for n more bytes at data + len (written directly, then len advanced by the caller) */
int buf_reserve(struct buf *b, size_t n);
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);

/* ---- logwriter.c ---- */
enum log_driver { LOG_NONE, LOG_JSON, LOG_LOCAL };
enum { STREAM_STDOUT = 1, STREAM_STDERR = 2 };

struct log_writer {
    enum log_driver driver;
    const char *path;
    int fd;             /* -1: no file (driver none, or closed) */
    int64_t size;       /* bytes in the live file, counting what it held when opened */
    int64_t max_size;   /* 0: unlimited */
    int max_file;
    struct buf pending[3]; /* an unfinished line per stream (index 1, 2) */
    bool failed;        /* a write failed once: reported, later failures are silent */
};

int log_open(struct log_writer *lw, enum log_driver driver, const char *path, int64_t max_size, int max_file);
void log_write(struct log_writer *lw, int stream, const char *data, size_t n);
void log_close(struct log_writer *lw);
int64_t log_size(const struct log_writer *lw);

/* JSON string body escaped like Python's json.encoder.encode_basestring of data decoded with errors="replace";
 * with ascii_only, non-ASCII becomes \uXXXX as json.dumps writes it. No surrounding quotes. */
int json_escape(struct buf *out, const char *data, size_t n, bool ascii_only);
/* "YYYY-MM-DDTHH:MM:SS[.fraction]Z"; trim drops trailing zeros of the fraction like Go's RFC3339Nano */
void format_rfc3339(char out[40], int64_t ns, bool trim);
int64_t now_realtime_ns(void);
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- command.c ---- */
enum jkind { J_MISSING, J_STRING, J_NUMBER, J_TRUE, J_FALSE, J_NULL, J_OTHER };

struct jvalue {
    enum jkind kind;
    const char *raw;  /* the value's text in the line */
    size_t raw_len;
    char *str;        /* decoded string (J_STRING), malloc'd */
    size_t str_len;
    double num;
    bool truthy;      /* Python's bool() of the value */
};

#define CMD_KEYS 7
enum { K_CMD, K_STDIN, K_STDOUT, K_STDERR, K_H, K_W, K_EXEC };

/* Parses one flat JSON object; fills the values of the keys we know. Returns 0, or -1 on malformed input. */
int parse_command(const char *line, size_t n, struct jvalue vals[CMD_KEYS]);
void free_command(struct jvalue vals[CMD_KEYS]);

#endif
