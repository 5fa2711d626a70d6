/* dockyard-monitor: serves one container's init for the rest of its life, in a few hundred KiB.
 *
 * The Python shim creates and starts the container, then execs this program with the init's stdio, the
 * bound shim.sock listener and any attach sockets. From then on it holds the init's output (to the log and
 * to attached clients), feeds its stdin, answers attach/wait/resize/status on shim.sock, reaps it (it is the
 * subreaper), drains the output, writes exit.json and exits. One thread around poll(); everything
 * non-blocking; buffers exist only while bytes are queued. Exec'd processes are not ours: each has an exec
 * shim (dockyard/runtime/shim/exec.py) that serves its stdio the same way. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "monitor.h"

#define HIGH_WATER (1 << 20)   /* stop reading a producer while a consumer has this much queued */
#define HEADER_LIMIT (1 << 20) /* a command line longer than this drops the connection */
#define DRAIN_AFTER_EXIT_NS 2000000000LL  /* output still in flight after the init died */
#define FLUSH_BEFORE_QUIT_NS 5000000000LL /* given to slow readers before we exit */
#define READ_CHUNK 65536
#define FLUSH_READS 64         /* "flush" reads at most this many chunks per stream (4 MiB) */
#define IDLE_TRIM_MS 1000 /* quiet this long: give the read buffer's pages and free heap back */

struct client {
    struct client *next;
    int fd;
    struct buf in, out;
    bool attached;  /* bound to the init's stdio (an attach stream) */
    bool want[3];   /* output streams it asked for, by stream id */
    bool has_stdin; /* its bytes are the init's stdin */
    bool waiter;    /* waiting for the exit status */
    bool reading;
    bool close_after_flush;
    bool dead; /* dropped; freed at the top of the next loop turn */
};

static struct {
    int listener;
    int sigfd;
    pid_t init_pid;
    bool tty, stdin_once;
    int out_fd[3]; /* our read ends by stream id (1 stdout, 2 stderr); -1 once at EOF */
    int master;    /* the pty master (tty), else -1 */
    int stdin_fd;  /* our write end of the init's stdin (the master with a tty), -1 when none */
    struct buf stdin_buf;
    bool stdin_closing;
    struct log_writer log;
    const char *oom_file;
    struct client *clients;
    bool exited, finished;
    int exit_code;
    int64_t exited_at, quit_deadline;
    char exit_status[160];
} M = {.listener = -1, .sigfd = -1, .out_fd = {-1, -1, -1}, .master = -1, .stdin_fd = -1};

static char chunk[READ_CHUNK] __attribute__((aligned(4096))); /* every read lands here first */
static bool chunk_dirty;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* ---- clients ---- */

static struct client *client_new(int fd)
{
    struct client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        diag("out of memory accepting a client");
        close(fd);
        return NULL;
    }
    set_nonblocking(fd);
    c->fd = fd;
    c->reading = true;
    c->next = M.clients;
    M.clients = c;
    return c;
}

static void client_reply(struct client *c, const char *json, bool close_after)
{
    buf_puts(&c->out, json);
    buf_append(&c->out, "\n", 1);
    if (close_after) {
        c->close_after_flush = true;
        c->reading = false;
    }
}

static void close_stdin(void)
{
    if (!M.tty)
        close_fd(&M.stdin_fd);
}

static void stdin_eof(struct client *c)
{
    c->reading = false;
    if (!c->attached || !c->has_stdin)
        return;
    if (M.stdin_once) {
        M.stdin_closing = true;
        if (buf_size(&M.stdin_buf) == 0)
            close_stdin();
    }
}

static void stdin_data(struct client *c, const char *data, size_t n)
{
    if (!c->attached || !c->has_stdin || M.stdin_fd < 0)
        return;
    buf_append(&M.stdin_buf, data, n);
}

static void drop(struct client *c)
{
    if (c->dead)
        return;
    c->dead = true;
    if (c->attached && c->has_stdin && c->reading)
        stdin_eof(c);
    c->waiter = false;
    shutdown(c->fd, SHUT_RDWR);
    close_fd(&c->fd);
    buf_free(&c->in);
    buf_free(&c->out);
}

static void sweep_dead(void)
{
    struct client **link = &M.clients;
    while (*link) {
        struct client *c = *link;
        if (c->dead) {
            *link = c->next;
            free(c);
        } else {
            link = &c->next;
        }
    }
}

static void bind_stream(struct client *c, bool in, bool out, bool err)
{
    c->attached = true;
    c->has_stdin = in && M.stdin_fd >= 0;
    c->want[STREAM_STDOUT] = out;
    c->want[STREAM_STDERR] = err;
    if (buf_size(&c->in)) { /* bytes sent right after the command line are already stdin */
        stdin_data(c, buf_head(&c->in), buf_size(&c->in));
        buf_free(&c->in);
    }
}

/* ---- the init's stdio ---- */

static void output(int stream, const char *data, size_t n)
{
    log_write(&M.log, stream, data, n);
    unsigned char head[8] = {(unsigned char)stream, 0, 0, 0, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                             (unsigned char)(n >> 8), (unsigned char)n};
    for (struct client *c = M.clients; c; c = c->next) {
        if (c->dead || !c->attached || !c->want[stream] || c->close_after_flush)
            continue;
        if (!M.tty)
            buf_append(&c->out, head, sizeof(head));
        buf_append(&c->out, data, n);
    }
}

static void output_eof(int stream)
{
    int fd = M.out_fd[stream];
    M.out_fd[stream] = -1;
    if (fd == M.master) {
        M.master = -1;
        M.stdin_fd = -1;
    }
    close(fd);
}

/* One read of the stream into the log and the attached clients; false when nothing more is there now. */
static bool read_output(int stream)
{
    ssize_t n = read(M.out_fd[stream], chunk, sizeof(chunk));
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return false;
        if (errno != EIO) /* EIO on a pty master once the slave side is gone */
            diag("read output: %s", strerror(errno));
        n = 0;
    }
    chunk_dirty = true;
    if (n > 0) {
        output(stream, chunk, (size_t)n);
        return true;
    }
    output_eof(stream);
    return false;
}

static void write_stdin(void)
{
    ssize_t n = write(M.stdin_fd, buf_head(&M.stdin_buf), buf_size(&M.stdin_buf));
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        buf_free(&M.stdin_buf);
        close_stdin();
        return;
    }
    buf_consume(&M.stdin_buf, (size_t)n);
    if (buf_size(&M.stdin_buf) == 0 && M.stdin_closing)
        close_stdin();
}

static bool backpressured(void)
{
    for (struct client *c = M.clients; c; c = c->next)
        if (!c->dead && c->attached && buf_size(&c->out) > HIGH_WATER)
            return true;
    return false;
}

static bool has_outputs(void)
{
    return M.out_fd[STREAM_STDOUT] >= 0 || M.out_fd[STREAM_STDERR] >= 0;
}

/* "flush": whatever the container wrote to its stdout/stderr before the command arrived goes into the log now
 * (read until the pipes are empty, bounded so a busy writer cannot hold the loop), so a log read that follows
 * sees it. Not while an attached client is backpressured: its queue is the bound then. */
static void drain_outputs(void)
{
    for (int s = STREAM_STDOUT; s <= STREAM_STDERR; s++) {
        int fd = M.out_fd[s];
        if (s == STREAM_STDERR && fd >= 0 && fd == M.out_fd[STREAM_STDOUT])
            continue; /* a TTY: one fd */
        for (int i = 0; i < FLUSH_READS && M.out_fd[s] >= 0 && !backpressured(); i++)
            if (!read_output(s))
                break;
    }
}

/* ---- reaping and the end ---- */

static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid != M.init_pid || M.exited)
            continue; /* some reparented orphan */
        M.exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
        M.exited = true;
        M.exited_at = mono_ns();
    }
}

static bool read_oom_killed(void)
{
    if (M.oom_file == NULL)
        return false;
    int fd = open(M.oom_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char text[4096];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return false;
    text[n] = '\0';
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, "oom_kill ", 9) == 0)
            return strtoll(line + 9, NULL, 10) > 0;
    return false;
}

static void write_exit_json(void)
{
    int fd = open("exit.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(M.exit_status);
    /* tmp + rename, without fsync: readers never see half a file, and the exit path stays fast */
    if (fd < 0 || write(fd, M.exit_status, len) != (ssize_t)len) {
        diag("exit.json: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    close(fd);
    if (rename("exit.json.tmp", "exit.json") < 0)
        diag("exit.json: %s", strerror(errno));
}

static void finish_container(void)
{
    M.finished = true;
    close_fd(&M.out_fd[STREAM_STDOUT]);
    close_fd(&M.out_fd[STREAM_STDERR]);
    M.master = -1;
    close_stdin();
    M.stdin_fd = -1;
    buf_free(&M.stdin_buf);
    log_close(&M.log);
    bool oom = read_oom_killed();
    char when[40];
    format_rfc3339(when, now_realtime_ns(), false);
    snprintf(M.exit_status, sizeof(M.exit_status), "{\"exit_code\": %d, \"oom_killed\": %s, \"finished_at\": \"%s\"}",
             M.exit_code, oom ? "true" : "false", when);
    write_exit_json();
    for (struct client *c = M.clients; c; c = c->next) {
        if (c->dead)
            continue;
        if (c->waiter) {
            c->waiter = false;
            client_reply(c, M.exit_status, true);
        }
        if (c->attached)
            c->close_after_flush = true;
    }
    M.quit_deadline = mono_ns() + FLUSH_BEFORE_QUIT_NS;
}

static void stop_listening(void)
{
    close_fd(&M.listener);
    unlink("shim.sock");
    unlink("shim.pid");
}

/* ---- commands ---- */

/* Python's repr() of the command name, for "unknown command X". */
static void repr_name(struct buf *out, const struct jvalue *v)
{
    switch (v->kind) {
    case J_MISSING:
    case J_NULL: buf_puts(out, "None"); return;
    case J_TRUE: buf_puts(out, "True"); return;
    case J_FALSE: buf_puts(out, "False"); return;
    case J_NUMBER:
    case J_OTHER: buf_append(out, v->raw, v->raw_len); return;
    case J_STRING: break;
    }
    char quote = memchr(v->str, '\'', v->str_len) && !memchr(v->str, '"', v->str_len) ? '"' : '\'';
    buf_append(out, &quote, 1);
    for (size_t i = 0; i < v->str_len; i++) {
        unsigned char c = (unsigned char)v->str[i];
        char esc[8];
        if (c == '\\' || c == (unsigned char)quote) {
            esc[0] = '\\';
            esc[1] = (char)c;
            buf_append(out, esc, 2);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            buf_append(out, c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            buf_puts(out, esc);
        } else if (c == 0xC2 && i + 1 < v->str_len && (unsigned char)v->str[i + 1] < 0xA0) {
            snprintf(esc, sizeof(esc), "\\x%02x", (unsigned char)v->str[++i]); /* C1 controls */
            buf_puts(out, esc);
        } else {
            buf_append(out, &c, 1);
        }
    }
    buf_append(out, &quote, 1);
}

static void reply_error(struct client *c, const char *message, const char *kind)
{
    struct buf out = {0};
    buf_puts(&out, "{\"ok\": false, \"error\": \"");
    json_escape(&out, message, strlen(message), true);
    buf_puts(&out, "\"");
    if (kind) {
        buf_puts(&out, ", \"kind\": \"");
        buf_puts(&out, kind);
        buf_puts(&out, "\"");
    }
    buf_puts(&out, "}");
    buf_append(&out, "", 1);
    client_reply(c, out.data ? out.data : "{}", true);
    buf_free(&out);
}

/* int() of a command value the way the Python shim took it; -1 with *err set when it is not one. */
static long long int_value(const struct jvalue *v, const char *key, char *err, size_t err_size)
{
    if (v->kind == J_MISSING) {
        snprintf(err, err_size, "'%s'", key);
        return -1;
    }
    if (v->kind == J_NUMBER)
        return (long long)v->num;
    if (v->kind == J_TRUE || v->kind == J_FALSE)
        return v->kind == J_TRUE;
    if (v->kind == J_STRING) {
        char *end;
        long long n = strtoll(v->str, &end, 10);
        if (end != v->str && *end == '\0')
            return n;
    }
    snprintf(err, err_size, "invalid literal for int() with base 10: %.*s", (int)v->raw_len, v->raw);
    return -1;
}

static void cmd_resize(struct client *c, struct jvalue *v)
{
    char err[160];
    if (v[K_EXEC].truthy || M.master < 0) {
        reply_error(c, "no tty to resize", "state");
        return;
    }
    long long h = int_value(&v[K_H], "h", err, sizeof(err));
    long long w = h < 0 ? -1 : int_value(&v[K_W], "w", err, sizeof(err));
    if (h < 0 || w < 0 || h > 0xFFFF || w > 0xFFFF) {
        if (h >= 0 && w >= 0)
            snprintf(err, sizeof(err), "'H' format requires 0 <= number <= 65535");
        reply_error(c, err, "other");
        return;
    }
    struct winsize ws = {.ws_row = (unsigned short)h, .ws_col = (unsigned short)w};
    if (ioctl(M.master, TIOCSWINSZ, &ws) < 0) {
        snprintf(err, sizeof(err), "[Errno %d] %s", errno, strerror(errno));
        reply_error(c, err, "other");
        return;
    }
    client_reply(c, "{\"ok\": true}", true);
}

static void command(struct client *c, const char *line, size_t n)
{
    struct jvalue v[CMD_KEYS];
    char reply[160];
    if (parse_command(line, n, v) < 0) {
        client_reply(c, "{\"ok\": false, \"error\": \"bad command\"}", true);
        return;
    }
    c->reading = false;
    const char *name = v[K_CMD].kind == J_STRING ? v[K_CMD].str : "";
    if (v[K_CMD].kind == J_STRING && strcmp(name, "attach") == 0 && strlen(name) == v[K_CMD].str_len) {
        if (M.exited) {
            reply_error(c, "container is not running", NULL);
        } else {
            snprintf(reply, sizeof(reply), "{\"ok\": true, \"log_size\": %lld}", (long long)log_size(&M.log));
            client_reply(c, reply, false);
            bind_stream(c, v[K_STDIN].truthy, v[K_STDOUT].truthy, v[K_STDERR].truthy);
            c->reading = true;
        }
    } else if (v[K_CMD].kind == J_STRING && strcmp(name, "wait") == 0) {
        if (v[K_EXEC].truthy)
            reply_error(c, "no such exec", NULL);
        else if (M.finished)
            client_reply(c, M.exit_status, true);
        else
            c->waiter = true;
    } else if (v[K_CMD].kind == J_STRING && strcmp(name, "resize") == 0) {
        cmd_resize(c, v);
    } else if (v[K_CMD].kind == J_STRING && strcmp(name, "flush") == 0) {
        if (!M.finished)
            drain_outputs();
        snprintf(reply, sizeof(reply), "{\"ok\": true, \"log_size\": %lld}", (long long)log_size(&M.log));
        client_reply(c, reply, true);
    } else if (v[K_CMD].kind == J_STRING && strcmp(name, "status") == 0) {
        snprintf(reply, sizeof(reply), "{\"ok\": true, \"pid\": %d, \"running\": %s, \"execs\": {}}", (int)M.init_pid,
                 M.exited ? "false" : "true");
        client_reply(c, reply, true);
    } else {
        struct buf message = {0};
        buf_puts(&message, "unknown command ");
        repr_name(&message, &v[K_CMD]);
        buf_append(&message, "", 1);
        reply_error(c, message.data ? message.data : "unknown command", NULL);
        buf_free(&message);
    }
    free_command(v);
}

static void read_client(struct client *c)
{
    ssize_t n = recv(c->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        n = 0;
    }
    chunk_dirty = true;
    if (!c->attached && !c->waiter) { /* still reading the command line */
        if (n == 0) {
            drop(c);
            return;
        }
        buf_append(&c->in, chunk, (size_t)n);
        const char *head = buf_head(&c->in);
        const char *nl = memchr(head, '\n', buf_size(&c->in));
        if (nl == NULL) {
            if (buf_size(&c->in) > HEADER_LIMIT)
                drop(c);
            return;
        }
        size_t line_len = (size_t)(nl - head);
        char *line = malloc(line_len + 1);
        if (line == NULL) {
            drop(c);
            return;
        }
        memcpy(line, head, line_len);
        buf_consume(&c->in, line_len + 1);
        command(c, line, line_len);
        free(line);
        if (!c->attached)
            buf_free(&c->in);
        return;
    }
    if (n == 0) {
        if (c->attached)
            stdin_eof(c);
        else
            drop(c);
        return;
    }
    if (c->attached)
        stdin_data(c, chunk, (size_t)n);
}

static void write_client(struct client *c)
{
    ssize_t n = send(c->fd, buf_head(&c->out), buf_size(&c->out), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            drop(c);
        return;
    }
    buf_consume(&c->out, (size_t)n);
    if (buf_size(&c->out) == 0 && c->close_after_flush)
        drop(c);
}

static void accept_clients(void)
{
    for (;;) {
        int fd = accept4(M.listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                diag("accept: %s", strerror(errno));
            return;
        }
        client_new(fd);
    }
}

/* ---- the loop ---- */

enum handler { H_SIGNAL, H_LISTEN, H_STDIO, H_CLIENT };

struct poll_set {
    struct pollfd *fds;
    struct { enum handler kind; struct client *client; } *who;
    size_t count, cap;
};

static void watch(struct poll_set *ps, int fd, short events, enum handler kind, struct client *c)
{
    if (ps->count == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 8;
        void *fds = realloc(ps->fds, cap * sizeof(*ps->fds));
        if (fds == NULL)
            return;
        ps->fds = fds;
        void *who = realloc(ps->who, cap * sizeof(*ps->who));
        if (who == NULL)
            return;
        ps->who = who;
        ps->cap = cap;
    }
    ps->fds[ps->count] = (struct pollfd){.fd = fd, .events = events};
    ps->who[ps->count].kind = kind;
    ps->who[ps->count].client = c;
    ps->count++;
}

static void build_poll_set(struct poll_set *ps)
{
    ps->count = 0;
    watch(ps, M.sigfd, POLLIN, H_SIGNAL, NULL);
    if (M.listener >= 0)
        watch(ps, M.listener, POLLIN, H_LISTEN, NULL);
    bool paused = backpressured();
    bool stdin_pending = M.stdin_fd >= 0 && buf_size(&M.stdin_buf) > 0;
    for (int s = STREAM_STDOUT; s <= STREAM_STDERR; s++) {
        int fd = M.out_fd[s];
        if (fd < 0)
            continue;
        short ev = (short)(paused ? 0 : POLLIN);
        if (fd == M.stdin_fd && stdin_pending)
            ev |= POLLOUT;
        if (ev)
            watch(ps, fd, ev, H_STDIO, NULL);
    }
    if (stdin_pending && M.stdin_fd != M.master)
        watch(ps, M.stdin_fd, POLLOUT, H_STDIO, NULL);
    for (struct client *c = M.clients; c; c = c->next) {
        short ev = 0;
        if (c->reading && !(c->attached && buf_size(&M.stdin_buf) > HIGH_WATER))
            ev |= POLLIN;
        if (buf_size(&c->out))
            ev |= POLLOUT;
        if (ev || c->waiter) /* a waiter with no events still hears of a hang-up */
            watch(ps, c->fd, ev, H_CLIENT, c);
    }
}

static void dispatch_stdio(int fd, short ev)
{
    bool is_output = fd == M.out_fd[STREAM_STDOUT] || fd == M.out_fd[STREAM_STDERR];
    if (is_output && (ev & (POLLIN | POLLHUP | POLLERR)))
        read_output(fd == M.out_fd[STREAM_STDOUT] ? STREAM_STDOUT : STREAM_STDERR);
    if ((ev & POLLOUT) && M.stdin_fd == fd) {
        write_stdin();
    } else if ((ev & (POLLERR | POLLHUP)) && M.stdin_fd == fd && !is_output) {
        buf_free(&M.stdin_buf);
        close_stdin();
    }
}

static void dispatch_client(struct client *c, short ev)
{
    if (c->dead)
        return;
    if (ev & POLLOUT)
        write_client(c);
    if (c->dead || !(ev & (POLLIN | POLLHUP | POLLERR)))
        return;
    if (c->reading)
        read_client(c);
    else if (ev & (POLLHUP | POLLERR))
        drop(c);
}

static void drain_signals(void)
{
    struct signalfd_siginfo info;
    while (read(M.sigfd, &info, sizeof(info)) == (ssize_t)sizeof(info))
        ;
    reap();
}

static void trim_idle_memory(void)
{
    madvise(chunk, sizeof(chunk), MADV_DONTNEED);
    malloc_trim(0);
    chunk_dirty = false;
}

static bool pending_clients(void)
{
    for (struct client *c = M.clients; c; c = c->next)
        if (!c->dead && (buf_size(&c->out) || c->waiter))
            return true;
    return false;
}

static void run(void)
{
    struct poll_set ps = {0};
    reap();
    for (;;) {
        int64_t now = mono_ns();
        if (M.exited && !M.finished && (!has_outputs() || now - M.exited_at > DRAIN_AFTER_EXIT_NS)) {
            finish_container();
            stop_listening();
        }
        if (M.finished && (!pending_clients() || now > M.quit_deadline)) {
            free(ps.fds);
            free(ps.who);
            return;
        }
        for (struct client *c = M.clients; c; c = c->next)
            if (!c->dead && c->close_after_flush && buf_size(&c->out) == 0)
                drop(c);
        sweep_dead();
        build_poll_set(&ps);
        int timeout = M.exited ? 200 : chunk_dirty ? IDLE_TRIM_MS : -1; /* idle: sleep until an event */
        int ready = poll(ps.fds, ps.count, timeout);
        if (ready < 0) {
            if (errno != EINTR)
                diag("poll: %s", strerror(errno));
            continue;
        }
        if (ready == 0 && !M.exited)
            trim_idle_memory();
        for (size_t i = 0; i < ps.count && ready > 0; i++) {
            short ev = ps.fds[i].revents;
            if (ev == 0)
                continue;
            ready--;
            switch (ps.who[i].kind) {
            case H_SIGNAL: drain_signals(); break;
            case H_LISTEN: if (M.listener >= 0) accept_clients(); break;
            case H_STDIO: dispatch_stdio(ps.fds[i].fd, ev); break;
            case H_CLIENT: dispatch_client(ps.who[i].client, ev); break;
            }
        }
        reap();
    }
}

/* ---- start-up ---- */

static void usage(const char *why)
{
    diag("dockyard-monitor: %s", why);
    exit(2);
}

static long long number_arg(const char *text, const char *flag)
{
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno || end == text || *end)
        usage(flag);
    return n;
}

static void attach_arg(const char *spec)
{
    char *colon;
    long fd = strtol(spec, &colon, 10);
    if (colon == spec || *colon != ':' || fd < 0)
        usage("--attach FD:FLAGS");
    const char *flags = colon + 1;
    struct client *c = client_new((int)fd);
    if (c != NULL)
        bind_stream(c, strchr(flags, 'i') != NULL, strchr(flags, 'o') != NULL, strchr(flags, 'e') != NULL);
}

int main(int argc, char **argv)
{
    const char *state_dir = NULL, *log_path = NULL, *driver_name = NULL;
    long long max_size = 0, max_file = 1;
    int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1, pty_fd = -1;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--stdin-once") == 0) {
            M.stdin_once = true;
            continue;
        }
        if (i + 1 >= argc)
            usage(flag);
        const char *val = argv[++i];
        if (strcmp(flag, "--state-dir") == 0) state_dir = val;
        else if (strcmp(flag, "--listen-fd") == 0) M.listener = (int)number_arg(val, flag);
        else if (strcmp(flag, "--init-pid") == 0) M.init_pid = (pid_t)number_arg(val, flag);
        else if (strcmp(flag, "--stdin-fd") == 0) stdin_fd = (int)number_arg(val, flag);
        else if (strcmp(flag, "--stdout-fd") == 0) stdout_fd = (int)number_arg(val, flag);
        else if (strcmp(flag, "--stderr-fd") == 0) stderr_fd = (int)number_arg(val, flag);
        else if (strcmp(flag, "--pty-fd") == 0) pty_fd = (int)number_arg(val, flag);
        else if (strcmp(flag, "--log-driver") == 0) driver_name = val;
        else if (strcmp(flag, "--log-path") == 0) log_path = val;
        else if (strcmp(flag, "--log-max-size") == 0) max_size = number_arg(val, flag);
        else if (strcmp(flag, "--log-max-file") == 0) max_file = number_arg(val, flag);
        else if (strcmp(flag, "--oom-file") == 0) M.oom_file = val;
        else if (strcmp(flag, "--attach") == 0) continue; /* bound below, once the stdio is known */
        else usage(flag);
    }
    if (state_dir == NULL || M.listener < 0 || M.init_pid <= 0 || driver_name == NULL)
        usage("--state-dir, --listen-fd, --init-pid and --log-driver are required");
    enum log_driver driver = strcmp(driver_name, "json-file") == 0 ? LOG_JSON
                             : strcmp(driver_name, "local") == 0   ? LOG_LOCAL
                             : strcmp(driver_name, "none") == 0    ? LOG_NONE
                                                                   : (usage("--log-driver"), LOG_NONE);
    if (driver != LOG_NONE && log_path == NULL)
        usage("--log-path is required with a file log driver");

    /* signals: SIGCHLD through a signalfd (reset in case it was ignored: we must see the init's status) */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_SETMASK, &mask, NULL);
    M.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (M.sigfd < 0)
        usage("signalfd failed");
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    if (chdir(state_dir) < 0)
        usage("cannot enter the state dir");
    set_nonblocking(M.listener);

    if (pty_fd >= 0) {
        M.tty = true;
        set_nonblocking(pty_fd);
        M.master = M.stdin_fd = M.out_fd[STREAM_STDOUT] = pty_fd;
    } else {
        if (stdin_fd >= 0)
            set_nonblocking(M.stdin_fd = stdin_fd);
        if (stdout_fd >= 0)
            set_nonblocking(M.out_fd[STREAM_STDOUT] = stdout_fd);
        if (stderr_fd >= 0)
            set_nonblocking(M.out_fd[STREAM_STDERR] = stderr_fd);
    }
    if (log_open(&M.log, driver, log_path, max_size < 0 ? 0 : max_size, (int)max_file) < 0) {
        diag("cannot open the log %s: %s; logging disabled", log_path, strerror(errno));
        M.log.driver = LOG_NONE;
    }
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--stdin-once") == 0)
            continue;
        if (strcmp(argv[i], "--attach") == 0)
            attach_arg(argv[i + 1]);
        i++;
    }
    run();
    return 0;
}
