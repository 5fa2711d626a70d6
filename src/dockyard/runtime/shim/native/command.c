/* The one-line JSON command a client sends on shim.sock: a flat object whose few known keys we pick out.
 * Nested values are skipped (and count as truthy when non-empty); anything that is not a JSON object is
 * "bad command". */
#include <stdlib.h>
#include <string.h>

#include "monitor.h"

static const char *const KEYS[CMD_KEYS] = {"cmd", "stdin", "stdout", "stderr", "h", "w", "exec"};

struct scan {
    const char *p, *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n'))
        s->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void put_utf8(struct buf *out, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_append(out, b, n);
}

/* A string at s->p (on the opening quote); decoded into out when out is given. */
static int scan_string(struct scan *s, struct buf *out)
{
    s->p++;
    while (s->p < s->end) {
        char c = *s->p++;
        if (c == '"')
            return 0;
        if ((unsigned char)c < 0x20)
            return -1;
        if (c != '\\') {
            if (out)
                buf_append(out, &c, 1);
            continue;
        }
        if (s->p >= s->end)
            return -1;
        char e = *s->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple && e) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            if (out)
                buf_append(out, &decoded[simple - "\"\\/bfnrt"], 1);
            continue;
        }
        if (e != 'u' || s->end - s->p < 4)
            return -1;
        uint32_t cp = 0;
        for (int i = 0; i < 4; i++) {
            int v = hexval(s->p[i]);
            if (v < 0)
                return -1;
            cp = cp << 4 | (uint32_t)v;
        }
        s->p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && s->end - s->p >= 6 && s->p[0] == '\\' && s->p[1] == 'u') {
            uint32_t low = 0;
            int ok = 1;
            for (int i = 2; i < 6; i++) {
                int v = hexval(s->p[i]);
                ok &= v >= 0;
                low = low << 4 | (uint32_t)(v < 0 ? 0 : v);
            }
            if (ok && low >= 0xDC00 && low < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                s->p += 6;
            }
        }
        if (out)
            put_utf8(out, cp);
    }
    return -1;
}

static int scan_value(struct scan *s, struct jvalue *v, int depth);

/* An object or array: scanned for balance; returns whether it had members. */
static int scan_container(struct scan *s, int depth, bool *nonempty)
{
    char close = *s->p == '{' ? '}' : ']';
    bool object = close == '}';
    s->p++;
    skip_ws(s);
    *nonempty = false;
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        struct jvalue ignored;
        *nonempty = true;
        if (object) {
            if (s->p >= s->end || *s->p != '"' || scan_string(s, NULL) < 0)
                return -1;
            skip_ws(s);
            if (s->p >= s->end || *s->p++ != ':')
                return -1;
        }
        int rc = scan_value(s, &ignored, depth + 1);
        free(ignored.str);
        if (rc < 0)
            return -1;
        skip_ws(s);
        if (s->p >= s->end)
            return -1;
        char c = *s->p++;
        if (c == close)
            return 0;
        if (c != ',')
            return -1;
        skip_ws(s);
    }
}

static int scan_value(struct scan *s, struct jvalue *v, int depth)
{
    skip_ws(s);
    memset(v, 0, sizeof(*v));
    if (s->p >= s->end || depth > 64)
        return -1;
    const char *start = s->p;
    char c = *s->p;
    if (c == '"') {
        struct buf text = {0};
        if (scan_string(s, &text) < 0) {
            buf_free(&text);
            return -1;
        }
        v->kind = J_STRING;
        v->str_len = buf_size(&text);
        buf_append(&text, "", 1);
        v->str = text.data;
        v->truthy = v->str_len > 0;
    } else if (c == '{' || c == '[') {
        bool nonempty;
        if (scan_container(s, depth, &nonempty) < 0)
            return -1;
        v->kind = J_OTHER;
        v->truthy = nonempty;
    } else if (s->end - s->p >= 4 && memcmp(s->p, "true", 4) == 0) {
        s->p += 4;
        v->kind = J_TRUE;
        v->truthy = true;
    } else if (s->end - s->p >= 5 && memcmp(s->p, "false", 5) == 0) {
        s->p += 5;
        v->kind = J_FALSE;
    } else if (s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0) {
        s->p += 4;
        v->kind = J_NULL;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        char tmp[64];
        size_t n = 0;
        while (s->p < s->end && n < sizeof(tmp) - 1 && strchr("+-0123456789.eE", *s->p) && *s->p)
            tmp[n++] = *s->p++;
        tmp[n] = '\0';
        char *endp;
        v->num = strtod(tmp, &endp);
        if (*endp != '\0')
            return -1;
        v->kind = J_NUMBER;
        v->truthy = v->num != 0;
    } else {
        return -1;
    }
    v->raw = start;
    v->raw_len = (size_t)(s->p - start);
    return 0;
}

void free_command(struct jvalue vals[CMD_KEYS])
{
    for (int i = 0; i < CMD_KEYS; i++) {
        free(vals[i].str);
        vals[i].str = NULL;
    }
}

int parse_command(const char *line, size_t n, struct jvalue vals[CMD_KEYS])
{
    struct scan s = {line, line + n};
    memset(vals, 0, sizeof(struct jvalue) * CMD_KEYS);
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return -1;
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
    } else {
        for (;;) {
            struct buf key = {0};
            if (s.p >= s.end || *s.p != '"' || scan_string(&s, &key) < 0)
                goto bad_key;
            skip_ws(&s);
            if (s.p >= s.end || *s.p++ != ':')
                goto bad_key;
            struct jvalue v;
            if (scan_value(&s, &v, 1) < 0)
                goto bad_key;
            int slot = -1;
            for (int i = 0; i < CMD_KEYS; i++)
                if (buf_size(&key) == strlen(KEYS[i]) && memcmp(buf_head(&key), KEYS[i], buf_size(&key)) == 0)
                    slot = i;
            buf_free(&key);
            if (slot >= 0) { /* a repeated key: the last one wins, as in json.loads */
                free(vals[slot].str);
                vals[slot] = v;
            } else {
                free(v.str);
            }
            skip_ws(&s);
            if (s.p >= s.end)
                goto bad;
            char c = *s.p++;
            if (c == '}')
                break;
            if (c != ',')
                goto bad;
            skip_ws(&s);
            continue;
        bad_key:
            buf_free(&key);
            goto bad;
        }
    }
    skip_ws(&s);
    if (s.p != s.end)
        goto bad;
    return 0;
bad:
    free_command(vals);
    return -1;
}
