/* nvmx-conformance kvm: agent (MIT): the bounded JSON reader and writer of json.h. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES 65536
#define MAX_DEPTH 32

static jnode pool[MAX_NODES];
static size_t used;
static char *cur, *end;
static const char *error;

static jnode *node(char type)
{
	if (used == MAX_NODES) {
		error = "too many JSON values in one line";
		return NULL;
	}
	jnode *n = &pool[used++];
	memset(n, 0, sizeof(*n));
	n->type = type;
	return n;
}

static void ws(void)
{
	while (cur < end && (*cur == ' ' || *cur == '\t' || *cur == '\r' || *cur == '\n'))
		cur++;
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

/* Unescapes in place; the protocol's strings are ASCII, so \uXXXX above 0x7f becomes '?'. */
static const char *string(size_t *len)
{
	if (cur >= end || *cur != '"') {
		error = "expected a string";
		return NULL;
	}
	char *out = ++cur, *w = out;
	while (cur < end && *cur != '"') {
		if (*cur != '\\') {
			*w++ = *cur++;
			continue;
		}
		if (++cur >= end)
			break;
		char c = *cur++;
		switch (c) {
		case 'n': *w++ = '\n'; break;
		case 't': *w++ = '\t'; break;
		case 'r': *w++ = '\r'; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case '"': case '\\': case '/': *w++ = c; break;
		case 'u': {
			int v = 0;
			for (int i = 0; i < 4; i++) {
				int h = cur < end ? hexval(*cur) : -1;
				if (h < 0) {
					error = "bad \\u escape";
					return NULL;
				}
				v = v * 16 + h;
				cur++;
			}
			*w++ = v < 0x80 ? (char)v : '?';
			break;
		}
		default:
			error = "bad escape";
			return NULL;
		}
	}
	if (cur >= end) {
		error = "unterminated string";
		return NULL;
	}
	cur++; /* the closing quote; the terminator below may overwrite it */
	*w = 0;
	*len = (size_t)(w - out);
	return out;
}

static jnode *value(int depth)
{
	ws();
	if (cur >= end) {
		error = "unexpected end of line";
		return NULL;
	}
	if (depth > MAX_DEPTH) {
		error = "JSON nested too deeply";
		return NULL;
	}
	if (*cur == '{' || *cur == '[') {
		char close = *cur == '{' ? '}' : ']';
		jnode *n = node(*cur == '{' ? 'o' : 'a'), *last = NULL;
		if (!n)
			return NULL;
		cur++;
		ws();
		if (cur < end && *cur == close) {
			cur++;
			return n;
		}
		for (;;) {
			const char *key = NULL;
			size_t klen;
			ws();
			if (n->type == 'o') {
				if (!(key = string(&klen)))
					return NULL;
				ws();
				if (cur >= end || *cur != ':') {
					error = "expected ':'";
					return NULL;
				}
				cur++;
			}
			jnode *k = value(depth + 1);
			if (!k)
				return NULL;
			k->key = key;
			if (last)
				last->next = k;
			else
				n->child = k;
			last = k;
			ws();
			if (cur < end && *cur == ',') {
				cur++;
				continue;
			}
			if (cur < end && *cur == close) {
				cur++;
				return n;
			}
			error = "expected ',' or a closing bracket";
			return NULL;
		}
	}
	if (*cur == '"') {
		jnode *n = node('s');
		if (n && !(n->str = string(&n->len)))
			return NULL;
		return n;
	}
	static const struct { const char *word; char type; } words[] = { { "true", 't' }, { "false", 'f' }, { "null", 'z' } };
	for (size_t i = 0; i < 3; i++) {
		size_t l = strlen(words[i].word);
		if ((size_t)(end - cur) >= l && !memcmp(cur, words[i].word, l)) {
			cur += l;
			return node(words[i].type);
		}
	}
	if (*cur == '-' || (*cur >= '0' && *cur <= '9')) {
		jnode *n = node('n');
		if (!n)
			return NULL;
		n->str = cur;
		while (cur < end && (*cur == '-' || *cur == '+' || *cur == '.' || *cur == 'e' || *cur == 'E' || (*cur >= '0' && *cur <= '9')))
			cur++;
		n->len = (size_t)(cur - n->str);
		return n;
	}
	error = "unexpected character";
	return NULL;
}

jnode *json_parse(char *buf, size_t len, const char **err)
{
	used = 0;
	return json_parse_more(buf, len, err);
}

jnode *json_parse_more(char *buf, size_t len, const char **err)
{
	cur = buf;
	end = buf + len;
	error = NULL;
	jnode *root = value(0);
	if (root) {
		ws();
		if (cur != end) {
			root = NULL;
			error = "trailing characters";
		}
	}
	/* numbers are read through their length; strings were terminated in place */
	buf[len] = 0;
	*err = error;
	return root;
}

jnode *json_get(const jnode *obj, const char *key)
{
	if (!obj || obj->type != 'o')
		return NULL;
	for (jnode *c = obj->child; c; c = c->next)
		if (c->key && !strcmp(c->key, key))
			return c;
	return NULL;
}

int json_u64(const jnode *n, uint64_t *out)
{
	uint64_t v = 0;
	if (!n)
		return -1;
	if (n->type == 's' && n->len > 2 && n->len <= 18 && n->str[0] == '0' && n->str[1] == 'x') {
		for (size_t i = 2; i < n->len; i++) {
			int h = hexval(n->str[i]);
			if (h < 0)
				return -1;
			v = v << 4 | (uint64_t)h;
		}
		*out = v;
		return 0;
	}
	if (n->type == 'n' && n->len >= 1 && n->len <= 19) {
		for (size_t i = 0; i < n->len; i++) {
			if (n->str[i] < '0' || n->str[i] > '9')
				return -1;
			v = v * 10 + (uint64_t)(n->str[i] - '0');
		}
		*out = v;
		return 0;
	}
	return -1;
}

int json_bool(const jnode *n, int *out)
{
	if (!n || (n->type != 't' && n->type != 'f'))
		return -1;
	*out = n->type == 't';
	return 0;
}

void jb_raw(jbuf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void jb_str(jbuf *b, const char *s)
{
	jb_raw(b, s, strlen(s));
}

void jb_qstr(jbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	jb_raw(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			jb_raw(b, e, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			jb_raw(b, e, 6);
		} else {
			jb_raw(b, (const char *)&c, 1);
		}
	}
	jb_raw(b, "\"", 1);
}

void jb_u64(jbuf *b, uint64_t v)
{
	char t[24], *p = t + sizeof(t);
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	jb_raw(b, p, (size_t)(t + sizeof(t) - p));
}

void jb_i64(jbuf *b, int64_t v)
{
	if (v < 0) {
		jb_raw(b, "-", 1);
		jb_u64(b, (uint64_t)0 - (uint64_t)v);
	} else {
		jb_u64(b, (uint64_t)v);
	}
}

void jb_hex64(jbuf *b, uint64_t v)
{
	static const char hex[] = "0123456789abcdef";
	char t[20], *p = t + sizeof(t);
	*--p = '"';
	do
		*--p = hex[v & 15];
	while (v >>= 4);
	*--p = 'x';
	*--p = '0';
	*--p = '"';
	jb_raw(b, p, (size_t)(t + sizeof(t) - p));
}

/* Hex, with every run of 8 or more zero bytes written as ~<count in hex>. (at most ~fffff.): the
 * serial line is slow and nested-state pages are mostly zero. */
void jb_bytes(jbuf *b, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char t[512];
	size_t k = 0;
	jb_raw(b, "\"", 1);
	for (size_t i = 0; i < n;) {
		size_t z = 0;
		while (i + z < n && !p[i + z] && z < 0xfffff)
			z++;
		if (k + 16 > sizeof(t)) {
			jb_raw(b, t, k);
			k = 0;
		}
		if (z >= 8) {
			k += (size_t)snprintf(t + k, sizeof(t) - k, "~%zx.", z);
			i += z;
			continue;
		}
		t[k++] = hex[p[i] >> 4];
		t[k++] = hex[p[i] & 15];
		i++;
	}
	jb_raw(b, t, k);
	jb_raw(b, "\"", 1);
}
