/*
 * nvmx-conformance linux: target harness (MIT, part of nvmx-conformance).
 *
 * Speaks nvmx-target/1 (targets/PROTOCOL.md) on stdin/stdout around kernel definitions that
 * targets/linux/generate.ts extracts from the user's kernel tree at run time into
 * nvmx-kernel.h, next to this file in the build cache. This file holds no kernel code: only a
 * small JSON reader, hex helpers and the dispatch. Each group is compiled only when the
 * generator found every piece it needs (NVMX_HAVE_*); otherwise it answers `unsupported` with
 * the generator's reason.
 */
#include "nvmx-kernel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a minimal JSON reader: parses one line in place into a tree of nodes ---- */

typedef struct J {
	char type; /* o a s n t f z */
	char *str; /* string value, or the number's text */
	char *key; /* member name inside an object */
	struct J *child, *next;
} J;

#define MAX_NODES 65536
#define MAX_DEPTH 64 /* the protocol nests 5 deep; a bound keeps hostile input off the C stack */

static J *nodes;
static size_t nnodes;
static char *cur;
static int bad, depth;
static const char *why; /* the first thing wrong with the line, for the one-line error */

static void fail(const char *what)
{
	if (!bad)
		why = what;
	bad = 1;
}

static J *jnew(char type)
{
	if (nnodes == MAX_NODES) {
		fail("more than 65536 JSON values in one line");
		return NULL;
	}
	J *j = &nodes[nnodes++];
	memset(j, 0, sizeof(*j));
	j->type = type;
	return j;
}

static void ws(void)
{
	while (*cur == ' ' || *cur == '\t' || *cur == '\r' || *cur == '\n')
		cur++;
}

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Unescapes in place. The line ends in a NUL, and every step checks for it before moving on: an
 * escape cut off by the end of the line is an error, never a read past it. */
static char *jstring(void)
{
	char *out, *w;
	if (*cur != '"') {
		fail("expected a string");
		return NULL;
	}
	out = w = ++cur;
	while (*cur && *cur != '"') {
		if (*cur != '\\') {
			*w++ = *cur++;
			continue;
		}
		cur++;
		switch (*cur) {
		case 'n': *w++ = '\n'; break;
		case 't': *w++ = '\t'; break;
		case 'r': *w++ = '\r'; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case '"': case '\\': case '/': *w++ = *cur; break;
		case 'u':
			for (int i = 1; i <= 4; i++)
				if (!is_hex(cur[i])) { /* stops at the NUL too */
					fail("a \\u escape without four hex digits");
					return NULL;
				}
			*w++ = '?'; /* never needed by the protocol's own fields */
			cur += 4;
			break;
		case 0:
			fail("a string ends in a backslash");
			return NULL;
		default:
			fail("an unknown escape in a string");
			return NULL;
		}
		cur++;
	}
	if (*cur != '"') {
		fail("an unterminated string");
		return NULL;
	}
	cur++;
	*w = 0;
	return out;
}

static J *jvalue(void)
{
	J *j, *last = NULL, *k;
	ws();
	if (bad)
		return NULL;
	if (*cur == '{' || *cur == '[') {
		char close = *cur == '{' ? '}' : ']';
		if (depth == MAX_DEPTH) {
			fail("JSON nested more than 64 deep");
			return NULL;
		}
		j = jnew(*cur == '{' ? 'o' : 'a');
		if (!j)
			return NULL;
		cur++;
		ws();
		if (*cur == close) {
			cur++;
			return j;
		}
		depth++;
		for (;;) {
			char *key = NULL;
			ws();
			if (j->type == 'o') {
				key = jstring();
				ws();
				if (bad || *cur != ':') {
					fail("expected ':' after a member name");
					return NULL;
				}
				cur++;
			}
			k = jvalue();
			if (!k)
				return NULL;
			k->key = key;
			if (last)
				last->next = k;
			else
				j->child = k;
			last = k;
			ws();
			if (*cur == ',') {
				cur++;
				continue;
			}
			if (*cur == close) {
				cur++;
				depth--;
				return j;
			}
			fail("expected ',' or a closing bracket");
			return NULL;
		}
	}
	if (*cur == '"') {
		j = jnew('s');
		if (j)
			j->str = jstring();
		return j;
	}
	if (!strncmp(cur, "true", 4) || !strncmp(cur, "false", 5) || !strncmp(cur, "null", 4)) {
		j = jnew(*cur == 't' ? 't' : *cur == 'f' ? 'f' : 'z');
		cur += *cur == 'f' ? 5 : 4;
		return j;
	}
	if (*cur == '-' || (*cur >= '0' && *cur <= '9')) {
		j = jnew('n');
		if (!j)
			return NULL;
		j->str = cur;
		while (*cur == '-' || *cur == '+' || *cur == '.' || *cur == 'e' || *cur == 'E' || (*cur >= '0' && *cur <= '9'))
			cur++;
		return j;
	}
	fail("not JSON");
	return NULL;
}

static J *get(J *obj, const char *key)
{
	for (J *k = obj ? obj->child : NULL; k; k = k->next)
		if (k->key && !strcmp(k->key, key))
			return k;
	return NULL;
}

static unsigned long long num(J *j)
{
	if (!j || (j->type != 's' && j->type != 'n'))
		return 0; /* objects, arrays and literals have no text */
	return strtoull(j->str, NULL, j->type == 's' ? 16 : 10); /* "0x…" strings or JSON integers */
}

/* ---- output: one growing line ---- */

static char *out;
static size_t outlen, outcap;

static void out_of_memory(void)
{
	fprintf(stderr, "harness: out of memory\n");
	exit(1);
}

/* Room for n more bytes and a NUL. */
static void reserve(size_t n)
{
	if (outlen + n + 1 > outcap) {
		outcap = (outlen + n + 1) * 2;
		out = realloc(out, outcap);
		if (!out)
			out_of_memory();
	}
}

static void put(const char *s, size_t n)
{
	reserve(n);
	memcpy(out + outlen, s, n);
	outlen += n;
}

static void puts_(const char *s) { put(s, strlen(s)); }

static void putf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
/* Formats into a stack buffer, or when that is too short, straight into the grown output line:
 * nothing is ever cut. */
static void putf(const char *fmt, ...)
{
	char buf[256];
	va_list ap, again;
	va_start(ap, fmt);
	va_copy(again, ap);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0) {
		fprintf(stderr, "harness: cannot format \"%s\"\n", fmt);
		exit(1);
	}
	if ((size_t)n < sizeof(buf)) {
		put(buf, (size_t)n);
	} else {
		reserve((size_t)n);
		vsnprintf(out + outlen, (size_t)n + 1, fmt, again);
		outlen += (size_t)n;
	}
	va_end(again);
}

static void put_json_string(const char *s)
{
	puts_("\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			putf("\\u%04x", *s);
		else
			put(s, 1);
	}
	puts_("\"");
}

static const char HEX[] = "0123456789abcdef";

static void put_hex_bytes(const unsigned char *b, size_t n)
{
	puts_("\"");
	for (size_t i = 0; i < n; i++) {
		char two[2] = { HEX[b[i] >> 4], HEX[b[i] & 15] };
		put(two, 2);
	}
	puts_("\"");
}

/* Reads hex into buf (at most cap bytes); returns the byte count, or -1 if malformed. */
static long read_hex_bytes(J *j, unsigned char *buf, size_t cap)
{
	if (!j || j->type != 's')
		return -1;
	size_t n = strlen(j->str);
	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		char two[3] = { j->str[2 * i], j->str[2 * i + 1], 0 };
		if (!is_hex(two[0]) || !is_hex(two[1]))
			return -1;
		buf[i] = (unsigned char)strtoul(two, NULL, 16);
	}
	return (long)(n / 2);
}

static void answer_unsupported(unsigned long long id, const char *reason)
{
	putf("{\"id\":%llu,\"status\":\"unsupported\",\"reason\":", id);
	put_json_string(reason);
	puts_("}");
}

static void answer_error(unsigned long long id, const char *reason)
{
	putf("{\"id\":%llu,\"status\":\"error\",\"reason\":", id);
	put_json_string(reason);
	puts_("}");
}

/* ---- group layout: the vmcs12 layout from offsetof/sizeof, the field table from the kernel's array ---- */

#if NVMX_HAVE_LAYOUT
struct member_info {
	const char *name, *type, *ctype;
	unsigned offset, size, elem;
	int array;
};

static const struct member_info members[] = { NVMX_VMCS12_MEMBERS };
#define NMEMBERS (sizeof(members) / sizeof(members[0]))

static const struct { const char *name; unsigned long value; } field_names[] = { NVMX_VMCS_FIELD_NAMES };

static const char *field_name(unsigned enc)
{
	for (size_t i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++)
		if (field_names[i].value == enc)
			return field_names[i].name;
	return NULL;
}

static const struct member_info *member_at(unsigned offset)
{
	for (size_t i = 0; i < NMEMBERS; i++)
		if (offset >= members[i].offset && offset < members[i].offset + members[i].size)
			return &members[i];
	return NULL;
}

/* The table index is ROL16(encoding, 6); rotating by 10 more gives the encoding back. */
#define IDX_TO_ENC(i) ((unsigned)(((i) >> 6) | ((i) << 10)) & 0xffff)

static int member_has_field(const struct member_info *m)
{
	for (unsigned i = 0; i < nr_vmcs12_fields; i++)
		if (vmcs12_field_offsets[i] && member_at(vmcs12_field_offsets[i]) == m)
			return 1;
	return 0;
}

static void answer_layout(unsigned long long id, J *args)
{
	J *s = get(args, "structure");
	if (!s || s->type != 's' || strcmp(s->str, "vmcs12")) {
		answer_unsupported(id, "only the vmcs12 layout is extracted from kernel trees in this version");
		return;
	}
	putf("{\"id\":%llu,\"status\":\"ok\",\"value\":{\"format\":\"nvmx-layout/1\",\"structure\":\"vmcs12\",\"name\":", id);
	put_json_string(NVMX_LAYOUT_NAME);
	putf(",\"revision\":\"0x%08x\",\"size\":%u,\"members\":[", (unsigned)VMCS12_REVISION, (unsigned)NVMX_VMCS12_SIZE);
	for (size_t i = 0; i < NMEMBERS; i++) {
		const struct member_info *m = &members[i];
		putf("%s{\"name\":\"%s\",\"offset\":%u,\"size\":%u,\"type\":\"%s\"", i ? "," : "", m->name, m->offset, m->size, m->type);
		if (m->array)
			putf(",\"count\":%u", m->size / m->elem);
		if (m->array && !member_has_field(m))
			puts_(",\"padding\":true"); /* reserved space: an array no encoding reaches */
		if (m->ctype)
			putf(",\"ctype\":\"%s\"", m->ctype);
		puts_("}");
	}
	puts_("],\"fields\":[");
	int first = 1;
	for (unsigned i = 0; i < nr_vmcs12_fields; i++) {
		unsigned off = vmcs12_field_offsets[i], enc = IDX_TO_ENC(i);
		const struct member_info *m;
		const char *name;
		if (!off)
			continue;
		m = member_at(off);
		if (!m) {
			fprintf(stderr, "harness: encoding 0x%04x maps to offset %u, inside no member\n", enc, off);
			continue;
		}
		putf("%s{\"encoding\":\"0x%04x\",\"member\":\"%s\"", first ? "" : ",", enc, m->name);
		name = field_name(enc);
		if (name)
			putf(",\"name\":\"%s\"", name);
		if (off != m->offset)
			puts_(",\"high\":true");
		puts_("}");
		first = 0;
	}
	puts_("]}}");
}
#endif

/* ---- group vmcs12-access: the kernel's get_vmcs12_field_offset, vmcs12_read_any, vmcs12_write_any ---- */

#if NVMX_HAVE_ACCESS
#define VMXERR_UNSUPPORTED_VMCS_COMPONENT_ 12 /* SDM; handle_vmread/handle_vmwrite fail with it on -ENOENT */
static unsigned char page[8192] __attribute__((aligned(64)));

static void answer_access(unsigned long long id, J *args)
{
	long n;
	J *ops = get(args, "ops");
	memset(page, 0, sizeof(page));
	n = read_hex_bytes(get(args, "page"), page, 4096);
	if (n < 0 || !ops || ops->type != 'a') {
		answer_error(id, "vmcs12-access: bad page or ops");
		return;
	}
	putf("{\"id\":%llu,\"status\":\"ok\",\"value\":{\"results\":[", id);
	int first = 1;
	for (J *op = ops->child; op; op = op->next) {
		unsigned long field = (unsigned long)num(get(op, "encoding"));
		short offset = get_vmcs12_field_offset(field);
		J *kind = get(op, "op");
		int write = kind && kind->type == 's' && !strcmp(kind->str, "write");
		if (!first)
			puts_(",");
		first = 0;
		if (offset < 0) {
			putf("{\"ok\":false,\"vmfail\":\"valid\",\"error\":%d,\"reason\":\"unsupported VMCS component 0x%lx\"}",
			     VMXERR_UNSUPPORTED_VMCS_COMPONENT_, field);
			continue;
		}
		if (write)
			vmcs12_write_any((struct vmcs12 *)page, field, (u16)offset, (u64)num(get(op, "value")));
		/* a write reports the value now stored: the kernel's own read of it */
		putf("{\"ok\":true,\"value\":\"0x%llx\"}", (unsigned long long)vmcs12_read_any((struct vmcs12 *)page, field, (u16)offset));
	}
	puts_("],\"page\":");
	put_hex_bytes(page, (size_t)n);
	puts_("}}");
}
#endif

/* ---- group msr-filter: nested_evmcs_filter_control_msr and nested_evmcs_check_controls ---- */

#if NVMX_HAVE_MSR_FILTER
static void answer_filter(unsigned long long id, J *args)
{
	J *msrs = get(args, "msrs");
	struct kvm_vcpu_hv hv = { 0 };
	struct kvm_vcpu vcpu = { &hv };
	if (!msrs || msrs->type != 'a') {
		answer_error(id, "filter-vmx-msrs: bad msrs");
		return;
	}
	hv.cpuid_cache.nested_ebx = (u32)num(get(args, "hvNestedEbx"));
	putf("{\"id\":%llu,\"status\":\"ok\",\"value\":[", id);
	for (J *m = msrs->child; m; m = m->next) {
		u64 value = (u64)num(get(m, "value"));
		nested_evmcs_filter_control_msr(&vcpu, (u32)num(get(m, "index")), &value);
		putf("%s\"0x%llx\"", m == msrs->child ? "" : ",", (unsigned long long)value);
	}
	puts_("]}");
}

static void answer_check_controls(unsigned long long id, J *args)
{
	static unsigned char vmcs12[8192] __attribute__((aligned(64)));
	const char *field;
	int r;
	memset(vmcs12, 0, sizeof(vmcs12));
	if (read_hex_bytes(get(args, "vmcs12"), vmcs12, 4096) < 0) {
		answer_error(id, "evmcs-check-controls: bad vmcs12");
		return;
	}
	nvmx_failed_check = NULL;
	r = nested_evmcs_check_controls((struct vmcs12 *)vmcs12);
	if (r == 0) {
		putf("{\"id\":%llu,\"status\":\"ok\",\"value\":{\"ok\":true}}", id);
		return;
	}
	if (r != -EINVAL) {
		answer_error(id, "nested_evmcs_check_controls returned neither 0 nor -EINVAL");
		return;
	}
	/* the rule is the vmcs12 field the failed check read */
	field = nvmx_failed_check ? strstr(nvmx_failed_check, "vmcs12->") : NULL;
	putf("{\"id\":%llu,\"status\":\"ok\",\"value\":{\"ok\":false,\"errno\":\"EINVAL\",\"rule\":", id);
	if (field) {
		char name[64];
		size_t n = strspn(field + 8, "abcdefghijklmnopqrstuvwxyz0123456789_");
		snprintf(name, sizeof(name), "%.*s", (int)(n < 63 ? n : 63), field + 8);
		put_json_string(name);
	} else {
		put_json_string(nvmx_failed_check ? nvmx_failed_check : "(no check recorded)");
	}
	puts_("}}");
}
#endif

static void answer_one(J *req)
{
	unsigned long long id = num(get(req, "id"));
	J *op = get(req, "op");
	J *args = get(req, "args");
	const char *name = op && op->type == 's' ? op->str : "";
	(void)args; /* unused when the tree offers no group that takes arguments */
	if (!strcmp(name, "layout")) {
#if NVMX_HAVE_LAYOUT
		answer_layout(id, args);
#else
		answer_unsupported(id, NVMX_UNSUPPORTED_LAYOUT);
#endif
	} else if (!strcmp(name, "vmcs12-access")) {
#if NVMX_HAVE_ACCESS
		answer_access(id, args);
#else
		answer_unsupported(id, NVMX_UNSUPPORTED_ACCESS);
#endif
	} else if (!strcmp(name, "evmcs-to-vmcs12") || !strcmp(name, "vmcs12-to-evmcs")) {
		answer_unsupported(id, NVMX_UNSUPPORTED_EVMCS_SYNC);
	} else if (!strcmp(name, "filter-vmx-msrs") || !strcmp(name, "evmcs-check-controls")) {
#if NVMX_HAVE_MSR_FILTER
		if (name[0] == 'f')
			answer_filter(id, args);
		else
			answer_check_controls(id, args);
#else
		answer_unsupported(id, NVMX_UNSUPPORTED_MSR_FILTER);
#endif
	} else if (!strcmp(name, "read-revisions")) {
		answer_unsupported(id, "the kernel reads one vmcs12 revision only");
	} else {
		char why[160];
		snprintf(why, sizeof(why), "unknown op \"%.100s\"", name);
		answer_unsupported(id, why);
	}
}

#define HEAD 60

/* One line on stderr: what is wrong and how the line starts (control bytes shown as '?'). */
static void refuse(const char *head, size_t len, const char *what)
{
	char shown[HEAD + 1];
	size_t n = len < HEAD ? len : HEAD;
	for (size_t i = 0; i < n; i++)
		shown[i] = (unsigned char)head[i] < 0x20 || head[i] == 0x7f ? '?' : head[i];
	shown[n] = 0;
	fprintf(stderr, "harness: unreadable request (%s), ignored: %s%s\n", what, shown, len > n ? "..." : "");
}

int main(void)
{
	char *line = NULL, head[HEAD];
	size_t cap = 0;
	ssize_t len;
	nodes = malloc(MAX_NODES * sizeof(J));
	if (!nodes)
		out_of_memory();
	fputs(NVMX_HELLO "\n", stdout);
	fflush(stdout);
	while ((len = getline(&line, &cap, stdin)) > 0) {
		J *msg, *batch;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		/* parsing unescapes in place: an error quotes the line's start as it came */
		memcpy(head, line, (size_t)len < HEAD ? (size_t)len : HEAD);
		nnodes = 0;
		bad = depth = 0;
		cur = line;
		msg = jvalue();
		ws();
		if (!bad && cur != line + len)
			fail(*cur ? "text after the JSON value" : "a NUL byte in the line");
		if (!bad && (!msg || msg->type != 'o'))
			fail("not a JSON object");
		if (bad) {
			refuse(head, (size_t)len, why);
			continue;
		}
		outlen = 0;
		batch = get(msg, "batch");
		if (batch && batch->type == 'a') {
			puts_("{\"batch\":[");
			for (J *r = batch->child; r; r = r->next) {
				answer_one(r);
				if (r->next)
					puts_(",");
			}
			puts_("]}");
		} else {
			answer_one(msg);
		}
		puts_("\n");
		fwrite(out, 1, outlen, stdout);
		fflush(stdout);
	}
	if (!feof(stdin)) {
		fprintf(stderr, "harness: cannot read a request line (out of memory?)\n");
		return 1;
	}
	return 0;
}
