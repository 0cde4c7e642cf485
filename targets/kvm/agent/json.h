/*
 * nvmx-conformance kvm: agent (MIT, part of nvmx-conformance): a bounded JSON reader and writer.
 *
 * The reader parses one line in place into a pool of nodes. Every read is bounded by the line's
 * end, so a malformed or truncated line (a string ending in a backslash, a cut \u escape) is a
 * parse error, never an over-read.
 */
#ifndef NVMX_JSON_H
#define NVMX_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef struct jnode {
	char type;        /* o(bject) a(rray) s(tring) n(umber) t(rue) f(alse) z (null) */
	const char *str;  /* string value (NUL-terminated, unescaped in place), or the number's text */
	size_t len;       /* string length in bytes */
	const char *key;  /* member name inside an object */
	struct jnode *child, *next;
} jnode;

/* Parses buf[0..len) (modified in place; buf[len] must be writable). NULL on error, with *err set. */
jnode *json_parse(char *buf, size_t len, const char **err);
/* The same, keeping every node parsed before (json_parse reuses the pool): for a second document
 * read while the request's nodes are still in use. */
jnode *json_parse_more(char *buf, size_t len, const char **err);

jnode *json_get(const jnode *obj, const char *key);
/* "0x…" strings and non-negative JSON integers; 0 on success */
int json_u64(const jnode *n, uint64_t *out);
int json_bool(const jnode *n, int *out);

/* A growable output buffer. On allocation failure it sets `failed` and drops further output. */
typedef struct jbuf {
	char *p;
	size_t len, cap;
	int failed;
} jbuf;

void jb_raw(jbuf *b, const char *s, size_t n);
void jb_str(jbuf *b, const char *s);          /* raw text */
void jb_qstr(jbuf *b, const char *s);         /* a JSON string, escaped */
void jb_u64(jbuf *b, uint64_t v);             /* a JSON number */
void jb_i64(jbuf *b, int64_t v);
void jb_hex64(jbuf *b, uint64_t v);           /* "0x…" */
void jb_bytes(jbuf *b, const uint8_t *p, size_t n); /* "hex" */

#endif
