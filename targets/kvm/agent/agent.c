/*
 * nvmx-conformance kvm: agent (MIT, part of nvmx-conformance).
 *
 * Runs inside the emulated machine (Bochs, which emulates VMX) as the only program of the
 * initramfs, and answers nvmx-target/1 (targets/PROTOCOL.md) on a serial line with real ioctls on
 * /dev/kvm: the kernel's own KVM_SET/GET_NESTED_STATE code is what answers. It holds no kernel
 * code; the facts it needs that are ours (the profile, the vmcs12 revision) come from the kernel
 * command line that the host-side target writes (nvmx.profile=, nvmx.vmcs12_revision=).
 *
 * Usage: nvmx-agent [DEVICE]   (default: stdin/stdout; in the machine: /dev/ttyS1)
 */
#define _GNU_SOURCE
#include "json.h"
#include "l1.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <sys/utsname.h>
#include <termios.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_LINE (4u << 20)
#define MAX_VCPUS 64
#define GUEST_MEM (16u << 20)
#define PAGE 4096u
#define MSR_IA32_FEATURE_CONTROL 0x3a

static int in_fd = 0, out_fd = 1;
static int kvm_fd = -1;
static int nested_loaded = -1; /* the kvm_intel `nested` parameter the module was loaded with */
static char profile[64], release[128], kvm_problem[256];
static char kvm_intel_params[128]; /* nvmx.kvm_intel=: e.g. enable_shadow_vmcs=0 (commas become blanks) */
static int entries_on;             /* nvmx.entries=1 (the default; kvm:<k>,entries=off clears it): VM-entries on generated guests */
static uint32_t vmcs12_revision;
static struct kvm_cpuid2 *supported_cpuid;

struct vcpu {
	int used, vm, fd;
	uint8_t *mem;
	unsigned id;
	struct kvm_run *run;
	size_t run_size;
	int l1_started; /* KVM_RUN has brought L1 to its loop (lazily: a pure restore never runs it) */
	int in_smm;     /* the SMM handler is waiting for RSM */
	int smm_from_l2; /* the SMI came while L2 ran: RSM enters L2 again */
	int smm_by_events; /* put in SMM by KVM_SET_VCPU_EVENTS (a restore), not by an SMI: no handler runs, SMRAM holds no state-save area */
};

/* the L1 guest's code and SMM handler (l1.S) */
extern const uint8_t l1_start[], l1_end[], l1_vectors[], smm_start[], smm_end[];
static int vcpu_mmap_size;
static struct vcpu vcpus[MAX_VCPUS];
static unsigned next_handle = 1;

/* ---- output ---- */

static void write_all(const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(out_fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			exit(3); /* the line is gone: nobody can hear us any more */
		p += w;
		n -= (size_t)w;
	}
}

/* ---- answers ---- */

typedef struct {
	const char *status; /* ok | unsupported | error */
	const char *reason;
} answer;

static answer OK = { "ok", NULL };
static answer unsupported(const char *r) { return (answer){ "unsupported", r }; }
static answer failed(const char *r) { return (answer){ "error", r }; }

static char reason_buf[512];
static answer failedf(const char *what)
{
	snprintf(reason_buf, sizeof(reason_buf), "%s: %s", what, strerror(errno));
	return failed(reason_buf);
}

static const char *errno_name(int e)
{
	switch (e) {
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case E2BIG: return "E2BIG";
	case ENOMEM: return "ENOMEM";
	case ENOTTY: return "ENOTTY";
	case EPERM: return "EPERM";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENXIO: return "ENXIO";
	case EIO: return "EIO";
	default: {
		static char name[16];
		snprintf(name, sizeof(name), "E%d", e); /* no name here: the number, still an errno answer */
		return name;
	}
	}
}

/* ---- the KVM module and the VMs ---- */

static int load_module(const char *path, const char *params)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = (int)syscall(SYS_finit_module, fd, params, 0);
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

/* Tearing a VM down takes KVM 300-400 ms in Bochs. A thread does it, so the answer goes out at
 * once and the teardown uses the time the guest spends waiting for the next request on the slow
 * serial line. Reloading kvm_intel waits for every teardown (wait_reaped). */
static pthread_mutex_t reap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reap_cond = PTHREAD_COND_INITIALIZER;
static int reaping;

static void *reap(void *p)
{
	struct vcpu *v = p;
	if (v->run)
		munmap(v->run, v->run_size);
	close(v->fd);
	close(v->vm);
	munmap(v->mem, GUEST_MEM);
	free(v);
	pthread_mutex_lock(&reap_lock);
	reaping--;
	pthread_cond_broadcast(&reap_cond);
	pthread_mutex_unlock(&reap_lock);
	return NULL;
}

static void wait_reaped(void)
{
	pthread_mutex_lock(&reap_lock);
	while (reaping)
		pthread_cond_wait(&reap_cond, &reap_lock);
	pthread_mutex_unlock(&reap_lock);
}

/* A detached helper thread that never takes SIGALRM: the watchdog and the entry tick must
 * interrupt the main thread's KVM_RUN, and a process-directed signal goes to any thread that does
 * not block it. 0 on success. */
static int spawn_helper(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t attr;
	sigset_t alrm, old;
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_sigmask(SIG_BLOCK, &alrm, &old); /* the new thread inherits the mask */
	int r = pthread_create(&t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return r;
}

static void destroy(struct vcpu *v)
{
	if (!v->used)
		return;
	struct vcpu *copy = malloc(sizeof(*copy));
	pthread_mutex_lock(&reap_lock);
	reaping++;
	pthread_mutex_unlock(&reap_lock);
	if (copy)
		*copy = *v;
	if (!copy || spawn_helper(reap, copy)) {
		struct vcpu *inline_copy = copy ? copy : malloc(sizeof(*v));
		if (inline_copy) {
			*inline_copy = *v;
			reap(inline_copy);
		} else { /* no memory for the hand-over: leak the VM rather than lose the run */
			pthread_mutex_lock(&reap_lock);
			reaping--;
			pthread_mutex_unlock(&reap_lock);
		}
	}
	memset(v, 0, sizeof(*v));
}

static int open_kvm(void)
{
	if (kvm_fd >= 0)
		close(kvm_fd);
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		snprintf(kvm_problem, sizeof(kvm_problem), "cannot open /dev/kvm: %s (did kvm-intel load? see the console log)", strerror(errno));
		return -1;
	}
	vcpu_mmap_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	int n = 256;
	free(supported_cpuid);
	supported_cpuid = calloc(1, sizeof(*supported_cpuid) + n * sizeof(struct kvm_cpuid_entry2));
	if (!supported_cpuid)
		return -1;
	supported_cpuid->nent = n;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, supported_cpuid) < 0) {
		snprintf(kvm_problem, sizeof(kvm_problem), "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- spare VMs ----
 * KVM_CREATE_VM, the in-kernel irqchip, 16 MiB of guest memory and KVM_CREATE_VCPU take about
 * 100 ms in Bochs: most of a create-vcpu, and a case makes two. A thread makes them ahead, while
 * the guest waits for the next request on the slow serial line, and create-vcpu takes one; what
 * stays in the request is the configuration (CPUID, L1's memory and registers, MSRs, capability).
 * A spare has never run, so its memory is zero, as a fresh VM's. Reloading kvm_intel pauses the
 * thread and closes the spares first (they hold the module). */
struct vm_parts {
	int vm, fd;
	uint8_t *mem;
	struct kvm_run *run;
};
#define SPARES 2
static struct vm_parts spares[SPARES];
static int n_spares, spare_building, spare_paused = 1, spare_broken;
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spare_cond = PTHREAD_COND_INITIALIZER;

static void free_parts(struct vm_parts *p)
{
	if (p->run)
		munmap(p->run, (size_t)vcpu_mmap_size);
	if (p->fd >= 0)
		close(p->fd);
	if (p->vm >= 0)
		close(p->vm);
	if (p->mem)
		munmap(p->mem, GUEST_MEM);
}

/* A VM with its irqchip and memory, and its vCPU: 0, or -1 with errno and *what naming the step
 * (no shared buffer: the spare thread calls it too). */
static int make_parts(int kfd, struct vm_parts *p, const char **what)
{
	*p = (struct vm_parts){ .vm = -1, .fd = -1 };
	*what = "KVM_CREATE_VM";
	p->vm = ioctl(kfd, KVM_CREATE_VM, 0);
	if (p->vm < 0)
		return -1;
	/* an in-kernel local APIC, as a VMM has (QEMU's default): a halted L2 then halts in KVM (mp_state
	 * HALTED, which GET reads back as the activity state) instead of exiting to us with KVM_EXIT_HLT */
	*what = "KVM_CREATE_IRQCHIP";
	if (ioctl(p->vm, KVM_CREATE_IRQCHIP, 0) < 0)
		goto fail;
	*what = "guest memory";
	p->mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p->mem == MAP_FAILED) {
		p->mem = NULL;
		goto fail;
	}
	/* Debian's kernels make transparent huge pages "always": the first touch of each 2 MiB of guest
	 * memory (L1's tables, code and SMM handler alone touch three) zeroed a huge page, which took
	 * Bochs 60-80 ms of a create-vcpu's 100. Guest memory is touched a page here and there. */
	madvise(p->mem, GUEST_MEM, MADV_NOHUGEPAGE);
	struct kvm_userspace_memory_region region = { .slot = 0, .guest_phys_addr = 0, .memory_size = GUEST_MEM, .userspace_addr = (uint64_t)(uintptr_t)p->mem };
	if (ioctl(p->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		goto fail;
	/* in SMM a vCPU sees address space 1 (kvm_arch_vcpu_memslots_id): the same memory there, or
	 * KVM cannot write the SMM state-save area nor read it back at RSM (a triple fault) */
	*what = "KVM_SET_USER_MEMORY_REGION (SMM address space)";
	region.slot = 1u << 16;
	if (ioctl(p->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		goto fail;
	*what = "KVM_CREATE_VCPU";
	p->fd = ioctl(p->vm, KVM_CREATE_VCPU, 0);
	if (p->fd < 0)
		goto fail;
	*what = "mmap(kvm_run)";
	p->run = mmap(NULL, (size_t)vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
	if (p->run == MAP_FAILED) {
		p->run = NULL;
		goto fail;
	}
	return 0;
fail:;
	int e = errno;
	free_parts(p);
	errno = e;
	return -1;
}

static void *spare_maker(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&spare_lock);
	for (;;) {
		while (spare_paused || spare_broken || n_spares >= SPARES)
			pthread_cond_wait(&spare_cond, &spare_lock);
		int kfd = kvm_fd; /* stable while not paused: only a reload changes it, and it pauses us first */
		spare_building = 1;
		pthread_mutex_unlock(&spare_lock);
		struct vm_parts p;
		const char *what;
		int r = make_parts(kfd, &p, &what);
		pthread_mutex_lock(&spare_lock);
		spare_building = 0;
		if (r < 0) {
			spare_broken = 1; /* create-vcpu makes its own and reports what failed */
			fprintf(stderr, "nvmx-agent: no spare VMs until kvm_intel is reloaded: %s: %s\n", what, strerror(errno));
		}
		else
			spares[n_spares++] = p;
		pthread_cond_broadcast(&spare_cond);
	}
	return NULL;
}

/* A spare (waiting for the one being made rather than making another); 0 if there is none. */
static int take_spare(struct vm_parts *out)
{
	int got = 0;
	pthread_mutex_lock(&spare_lock);
	while (spare_building && !n_spares)
		pthread_cond_wait(&spare_cond, &spare_lock);
	if (n_spares) {
		*out = spares[--n_spares];
		got = 1;
		pthread_cond_broadcast(&spare_cond); /* make the next one */
	}
	pthread_mutex_unlock(&spare_lock);
	return got;
}

static void pause_spares(void)
{
	struct vm_parts drop[SPARES];
	int n;
	pthread_mutex_lock(&spare_lock);
	spare_paused = 1;
	while (spare_building)
		pthread_cond_wait(&spare_cond, &spare_lock);
	n = n_spares;
	memcpy(drop, spares, sizeof(drop));
	n_spares = 0;
	pthread_mutex_unlock(&spare_lock);
	for (int i = 0; i < n; i++)
		free_parts(&drop[i]);
}

static void resume_spares(void)
{
	pthread_mutex_lock(&spare_lock);
	spare_paused = spare_broken = 0;
	pthread_cond_broadcast(&spare_cond);
	pthread_mutex_unlock(&spare_lock);
}

static int read_nested_param(void)
{
	char c = 0;
	int fd = open("/sys/module/kvm_intel/parameters/nested", O_RDONLY);
	if (fd < 0)
		return -1;
	if (read(fd, &c, 1) != 1)
		c = 0;
	close(fd);
	return c == 'Y' || c == '1';
}

/* The `nested` module parameter is read-only at run time: a vCPU that wants the other value gets a
 * reloaded kvm_intel, which needs every VM closed first (their handles die with them). */
static answer ensure_nested(int want)
{
	if (nested_loaded == want)
		return OK;
	pause_spares();
	for (unsigned i = 0; i < MAX_VCPUS; i++)
		destroy(&vcpus[i]);
	wait_reaped();
	if (kvm_fd >= 0)
		close(kvm_fd);
	kvm_fd = -1;
	if (nested_loaded >= 0 && syscall(SYS_delete_module, "kvm_intel", O_NONBLOCK) < 0)
		return failedf("rmmod kvm_intel (to change its nested parameter)");
	char params[192];
	snprintf(params, sizeof(params), "nested=%d %s", want, kvm_intel_params);
	if (load_module("/lib/modules/kvm-intel.ko", params) < 0) {
		snprintf(kvm_problem, sizeof(kvm_problem), "insmod kvm-intel.ko %s: %s", params, strerror(errno));
		return failed(kvm_problem);
	}
	nested_loaded = read_nested_param();
	if (open_kvm() < 0)
		return failed(kvm_problem);
	resume_spares();
	return nested_loaded == want ? OK : failed("kvm_intel came back with another nested parameter");
}

static struct vcpu *find_vcpu(const jnode *args)
{
	jnode *h = json_get(args, "vcpu");
	if (!h || h->type != 's' || h->str[0] != 'v')
		return NULL;
	unsigned id = (unsigned)strtoul(h->str + 1, NULL, 10);
	for (unsigned i = 0; i < MAX_VCPUS; i++)
		if (vcpus[i].used && vcpus[i].id == id)
			return &vcpus[i];
	return NULL;
}

static int cfg_bool(const jnode *cfg, const char *key, int dflt)
{
	int v;
	return json_bool(json_get(cfg, key), &v) ? dflt : v;
}

static void cpuid_set(struct kvm_cpuid2 *c, uint32_t fn, uint32_t eax, uint32_t ebx, uint32_t ecx, uint32_t edx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn) {
			c->entries[i].eax = eax, c->entries[i].ebx = ebx, c->entries[i].ecx = ecx, c->entries[i].edx = edx;
			return;
		}
	struct kvm_cpuid_entry2 *e = &c->entries[c->nent++];
	memset(e, 0, sizeof(*e));
	e->function = fn, e->eax = eax, e->ebx = ebx, e->ecx = ecx, e->edx = edx;
}

/* Guest CPUID as a VMM would set it: KVM's supported set, VMX as configured, MAXPHYADDR, and the
 * Hyper-V leaves (signature, "Hv#1", and 0x4000000A when the configuration gives its EAX/EBX). */
static answer set_cpuid(struct vcpu *v, const jnode *cfg)
{
	int vmx = cfg_bool(cfg, "vmxInCpuid", 1);
	uint64_t maxphy = 36, eax = 0, ebx = 0;
	json_u64(json_get(cfg, "maxPhyAddr"), &maxphy);
	jnode *hv = json_get(cfg, "hypervCpuid");
	int hyperv = hv && (hv->type == 't' || hv->type == 'o');
	int nested_leaf = hv && hv->type == 'o';
	if (nested_leaf && (json_u64(json_get(hv, "nestedEax"), &eax) || json_u64(json_get(hv, "nestedEbx"), &ebx)))
		return failed("hypervCpuid needs nestedEax and nestedEbx");
	size_t n = supported_cpuid->nent + 8;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		return failed("out of memory");
	c->nent = 0;
	for (uint32_t i = 0; i < supported_cpuid->nent; i++) {
		struct kvm_cpuid_entry2 e = supported_cpuid->entries[i];
		if (e.function >= 0x40000000 && e.function < 0x40000100)
			continue; /* KVM's own paravirt leaves; Hyper-V's are added below when configured */
		if (e.function == 1)
			e.ecx = vmx ? e.ecx | (1u << 5) : e.ecx & ~(1u << 5);
		if (e.function == 0x80000008)
			e.eax = (e.eax & ~0xffu) | (uint32_t)maxphy;
		c->entries[c->nent++] = e;
	}
	int have_80000008 = 0;
	for (uint32_t i = 0; i < c->nent; i++)
		have_80000008 |= c->entries[i].function == 0x80000008;
	if (!have_80000008 && maxphy != 36)
		cpuid_set(c, 0x80000008, (uint32_t)maxphy, 0, 0, 0);
	if (hyperv) {
		cpuid_set(c, 0x40000000, nested_leaf ? 0x4000000A : 0x40000005, 0x7263694d, 0x666f736f, 0x76482074); /* "Microsoft Hv" */
		cpuid_set(c, 0x40000001, 0x31237648, 0, 0, 0);                                                          /* "Hv#1" */
		if (nested_leaf)
			cpuid_set(c, 0x4000000A, (uint32_t)eax, (uint32_t)ebx, 0, 0);
	}
	int r = ioctl(v->fd, KVM_SET_CPUID2, c);
	free(c);
	return r < 0 ? failedf("KVM_SET_CPUID2") : OK;
}

/* The non-TRUE control MSRs (PINBASED..ENTRY_CTLS): KVM derives them from their TRUE twins and
 * refuses to set them, so a configuration's value is checked against what KVM derived instead. */
static int derived_msr(uint32_t index) { return index >= 0x481 && index <= 0x484; }

static int get_msr(struct vcpu *v, uint32_t index, uint64_t *value)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[1];
	} m = { .h = { .nmsrs = 1 }, .e = { { .index = index } } };
	if (ioctl(v->fd, KVM_GET_MSRS, &m) != 1)
		return -1;
	*value = m.e[0].data;
	return 0;
}

static answer set_msr(struct vcpu *v, uint32_t index, uint64_t value)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[1];
	} m = { .h = { .nmsrs = 1 }, .e = { { .index = index, .data = value } } };
	int r = ioctl(v->fd, KVM_SET_MSRS, &m);
	if (r < 0)
		return failedf("KVM_SET_MSRS");
	if (r < 1) {
		snprintf(reason_buf, sizeof(reason_buf), "this KVM refuses host-initiated MSR 0x%x = 0x%llx (its VMX capabilities are narrower than the configuration's)", index, (unsigned long long)value);
		return unsupported(reason_buf);
	}
	return OK;
}

/* Host-initiated VMX MSRs, as a VMM restores them before the nested state. A value equal to what
 * the vCPU already reports is not written (KVM refuses some writes, e.g. CR0_FIXED1, even of the
 * same value); a value KVM refuses makes the configuration one this target cannot run. */
static answer set_vmx_msrs(struct vcpu *v, const jnode *cfg)
{
	answer a;
	/* VMXON needs IA32_FEATURE_CONTROL locked with VMX outside SMX, as firmware leaves it; KVM
	 * refuses that value unless VMX is in the guest CPUID and nested is on */
	if (cfg_bool(cfg, "vmxInCpuid", 1) && nested_loaded == 1 && strcmp((a = set_msr(v, MSR_IA32_FEATURE_CONTROL, 0x5)).status, "ok"))
		return a;
	jnode *msrs = json_get(cfg, "vmxMsrs");
	for (int pass = 0; pass < 2; pass++)
		for (jnode *e = msrs && msrs->type == 'o' ? msrs->child : NULL; e; e = e->next) {
			uint64_t index = strtoull(e->key, NULL, 0), value, now = 0;
			if (json_u64(e, &value))
				return failed("vmxMsrs values must be \"0x…\" strings");
			if (derived_msr((uint32_t)index) != pass)
				continue;
			if (get_msr(v, (uint32_t)index, &now) == 0 && now == value)
				continue;
			if (pass) {
				snprintf(reason_buf, sizeof(reason_buf), "KVM derives MSR 0x%x from its TRUE twin and refuses to set it: the configuration wants 0x%llx, KVM derived 0x%llx", (unsigned)index, (unsigned long long)value, (unsigned long long)now);
				return unsupported(reason_buf);
			}
			if (strcmp((a = set_msr(v, (uint32_t)index, value)).status, "ok"))
				return a;
		}
	return OK;
}

static answer enable_evmcs(struct vcpu *v)
{
	uint16_t version = 0;
	struct kvm_enable_cap cap = { .cap = KVM_CAP_HYPERV_ENLIGHTENED_VMCS, .args = { (uint64_t)(uintptr_t)&version } };
	return ioctl(v->fd, KVM_ENABLE_CAP, &cap) < 0 ? failedf("KVM_ENABLE_CAP(KVM_CAP_HYPERV_ENLIGHTENED_VMCS)") : OK;
}

static answer enter_smm(struct vcpu *v)
{
	struct kvm_vcpu_events ev;
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return failedf("KVM_GET_VCPU_EVENTS");
	ev.flags = KVM_VCPUEVENT_VALID_SMM;
	ev.smi.smm = 1;
	return ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0 ? failedf("KVM_SET_VCPU_EVENTS(smm)") : OK;
}

/* ---- the L1 guest ---- */

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static answer l1_registers(struct vcpu *v, int vmxe);

/* Memory and registers of the L1 guest: identity-mapped 64-bit mode, a GDT with a TSS, an IDT
 * whose gates lead to l1.S's stubs, the code, and the SMM handler at SMBASE + 0x8000. */
static answer l1_setup(struct vcpu *v, int vmxe)
{
	uint8_t *m = v->mem;
	put64(m + L1_PML4, L1_PDPT | 3);
	put64(m + L1_PDPT, L1_PD | 3);
	for (uint64_t i = 0; i < 512; i++)
		put64(m + L1_PD + i * 8, (i << 21) | 0x83);
	put64(m + L1_GDT + 8, 0x00af9b000000ffffull);  /* 0x08: 64-bit code */
	put64(m + L1_GDT + 16, 0x00cf93000000ffffull); /* 0x10: data */
	uint64_t tss = L1_TSS;                          /* 0x18: 64-bit TSS, busy */
	put64(m + L1_GDT + 24, 0x67 | (tss & 0xffffff) << 16 | 0x8bull << 40 | ((tss >> 24) & 0xff) << 56);
	put64(m + L1_GDT + 32, tss >> 32);
	for (uint64_t vec = 0; vec < 32; vec++) {
		uint64_t at = L1_CODE + (uint64_t)(l1_vectors - l1_start) + vec * 16;
		put64(m + L1_IDT + vec * 16, (at & 0xffff) | 0x08ull << 16 | 0x8eull << 40 | ((at >> 16) & 0xffff) << 48);
		put64(m + L1_IDT + vec * 16 + 8, at >> 32);
	}
	memcpy(m + L1_CODE, l1_start, (size_t)(l1_end - l1_start));
	memcpy(m + SMM_HANDLER, smm_start, (size_t)(smm_end - smm_start));
	return l1_registers(v, vmxe);
}

/* L1's registers at its entry point: 64-bit mode on the tables l1_setup wrote. Also how an L1 that
 * took a VM-exit to vmcs12's (generated, not ours) host state is brought back: the exit's events
 * are dropped with it. */
static answer l1_registers(struct vcpu *v, int vmxe)
{
	struct kvm_sregs sr;
	if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
		return failedf("KVM_GET_SREGS");
	struct kvm_segment code = { .base = 0, .limit = 0xffffffff, .selector = 8, .type = 11, .present = 1, .s = 1, .l = 1, .g = 1 };
	struct kvm_segment data = { .base = 0, .limit = 0xffffffff, .selector = 16, .type = 3, .present = 1, .s = 1, .db = 1, .g = 1 };
	sr.cs = code;
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss = data;
	sr.tr = (struct kvm_segment){ .base = L1_TSS, .limit = 0x67, .selector = 0x18, .type = 11, .present = 1 };
	sr.gdt.base = L1_GDT, sr.gdt.limit = 39;
	sr.idt.base = L1_IDT, sr.idt.limit = 32 * 16 - 1;
	sr.cr0 = 0x80050033;               /* PG AM WP NE ET MP PE */
	sr.cr3 = L1_PML4;
	sr.cr4 = 0x20 | 0x200 | (vmxe ? 0x2000 : 0); /* PAE OSFXSR, VMXE where KVM allows it */
	sr.efer = 0x500;                   /* LME LMA */
	if (ioctl(v->fd, KVM_SET_SREGS, &sr) < 0)
		return failedf("KVM_SET_SREGS (L1 in 64-bit mode)");
	struct kvm_regs r = { .rip = L1_CODE, .rsp = L1_STACK_TOP, .rflags = 2 };
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return failedf("KVM_SET_REGS");
	struct kvm_vcpu_events ev;
	memset(&ev, 0, sizeof(ev));
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return failedf("KVM_SET_VCPU_EVENTS");
	return OK;
}

static volatile sig_atomic_t watchdog_fired;
static void on_alarm(int sig) { (void)sig; watchdog_fired = 1; }

#define WATCHDOG_SECONDS 20

/* KVM_RUN until L1 (port READY) or the SMM handler (port SMM) waits again. A hang is stopped by
 * the watchdog's signal (KVM_RUN returns EINTR): an error naming the operation, never a stuck run. */
static answer l1_run(struct vcpu *v, const char *what, int *port)
{
	for (int rounds = 0; rounds < 64; rounds++) {
		watchdog_fired = 0;
		alarm(WATCHDOG_SECONDS);
		int r = ioctl(v->fd, KVM_RUN, 0);
		int e = errno;
		alarm(0);
		if (r < 0 && e == EINTR && watchdog_fired) {
			snprintf(reason_buf, sizeof(reason_buf), "%s: the L1 guest did not come back within %d s (watchdog)", what, WATCHDOG_SECONDS);
			return failed(reason_buf);
		}
		if (r < 0 && e == EINTR)
			continue;
		if (r < 0) {
			errno = e;
			return failedf(what);
		}
		switch (v->run->exit_reason) {
		case KVM_EXIT_IO:
			if (v->run->io.port == L1_PORT_READY || v->run->io.port == L1_PORT_SMM) {
				*port = v->run->io.port;
				return OK;
			}
			snprintf(reason_buf, sizeof(reason_buf), "%s: unexpected I/O to port 0x%x", what, v->run->io.port);
			return failed(reason_buf);
		case KVM_EXIT_INTERNAL_ERROR:
			*port = -(int)v->run->internal.suberror - 1;
			return OK;
		case KVM_EXIT_SHUTDOWN:
			snprintf(reason_buf, sizeof(reason_buf), "%s: the L1 guest shut down (triple fault)", what);
			return failed(reason_buf);
		default:
			snprintf(reason_buf, sizeof(reason_buf), "%s: unexpected KVM exit %u", what, v->run->exit_reason);
			return failed(reason_buf);
		}
	}
	return failed("KVM_RUN kept returning EINTR");
}

static answer l1_ready(struct vcpu *v)
{
	if (v->l1_started)
		return OK;
	int port;
	answer a = l1_run(v, "starting the L1 guest", &port);
	if (strcmp(a.status, "ok"))
		return a;
	if (port != L1_PORT_READY)
		return failed("the L1 guest did not reach its loop");
	v->l1_started = 1;
	return OK;
}

static const char *internal_error_name(int sub)
{
	switch (sub) {
	case KVM_INTERNAL_ERROR_EMULATION: return "KVM_INTERNAL_ERROR_EMULATION";
	case KVM_INTERNAL_ERROR_SIMUL_EX: return "KVM_INTERNAL_ERROR_SIMUL_EX";
	case KVM_INTERNAL_ERROR_DELIVERY_EV: return "KVM_INTERNAL_ERROR_DELIVERY_EV";
	default: return "KVM_EXIT_INTERNAL_ERROR";
	}
}

/* Puts one request in the mailbox and runs L1 until it waits again (*port: where it stopped). */
static answer l1_request(struct vcpu *v, uint64_t op, uint64_t arg0, uint64_t arg1, const char *what, int *port)
{
	answer a = l1_ready(v);
	if (strcmp(a.status, "ok"))
		return a;
	uint8_t *mb = v->mem + L1_MAILBOX;
	put64(mb + MB_OP, op);
	put64(mb + MB_ARG0, arg0);
	put64(mb + MB_ARG1, arg1);
	a = l1_run(v, what, port);
	put64(mb + MB_OP, OP_NOP);
	return a;
}

static answer l1_result(struct vcpu *v, uint64_t op, const char *what, int port, jbuf *val);

/* One request to L1 (or to the SMM handler); the result as the guest saw it. */
static answer l1_op(struct vcpu *v, uint64_t op, uint64_t arg0, uint64_t arg1, const char *what, jbuf *val)
{
	int port;
	answer a = l1_request(v, op, arg0, arg1, what, &port);
	if (strcmp(a.status, "ok"))
		return a;
	return l1_result(v, op, what, port, val);
}

/* What one instruction gave L1, from its result block (the mailbox, or a script entry): the
 * exception it took, RFLAGS, the VM-instruction error, a value. */
static answer block_result(const uint8_t *block, uint64_t exc, uint64_t op, const char *what, jbuf *val)
{
	uint64_t rflags = get64(block + MB_RFLAGS);
	if (op == OP_NOP || op == OP_RSM) {
		if (exc == 6 + 1) {
			jb_str(val, "{\"result\":\"#UD\",\"reason\":\"RSM outside SMM\"}");
			return OK;
		}
	} else if (exc == 6 + 1) {
		jb_str(val, "{\"result\":\"#UD\",\"reason\":");
		jb_qstr(val, what);
		jb_str(val, "}");
		return OK;
	}
	if (exc) {
		snprintf(reason_buf, sizeof(reason_buf), "%s: the L1 guest took exception %llu", what, (unsigned long long)(exc - 1));
		return failed(reason_buf);
	}
	if (op != OP_NOP && op != OP_RSM && (rflags & 1)) {
		jb_str(val, "{\"result\":\"VMfailInvalid\",\"reason\":\"CF set\"}");
	} else if (op != OP_NOP && op != OP_RSM && (rflags & 0x40)) {
		jb_str(val, "{\"result\":\"VMfailValid\",\"reason\":\"ZF set\",\"error\":");
		jb_u64(val, get64(block + MB_ERROR));
		jb_str(val, "}");
	} else if (op == OP_VMREAD) {
		jb_str(val, "{\"result\":\"ok\",\"value\":");
		jb_hex64(val, get64(block + MB_VALUE));
		jb_str(val, "}");
	} else {
		jb_str(val, "{\"result\":\"ok\"}");
	}
	return OK;
}

/* What the instruction of a finished request gave L1 (an internal error of KVM_RUN included). */
static answer l1_result(struct vcpu *v, uint64_t op, const char *what, int port, jbuf *val)
{
	uint8_t *mb = v->mem + L1_MAILBOX;
	if (port < 0) {
		jb_str(val, "{\"result\":\"internal-error\",\"reason\":");
		jb_qstr(val, internal_error_name(-port - 1));
		jb_str(val, "}");
		return OK;
	}
	if (!v->smm_by_events) /* L1's code runs there with SMM's flag, and says READY */
		v->in_smm = port == L1_PORT_SMM;
	return block_result(mb, get64(mb + MB_EXCEPTION), op, what, val);
}

/* ---- VM-entries: L2 runs on the generated guest state ----
 *
 * L2 runs the vmcs12's own guest state, and a VM-exit loads its own host state into L1: neither is
 * ours. Guest memory the properties did not write is zero, so an L2 (or an L1 at a generated host
 * RIP) faults through not-present page tables to a triple fault within a few instructions, or
 * stops at an access outside guest memory; it never spins (which would hang Bochs). So after an
 * entry the agent does not rely on where the run stopped: KVM_GET_NESTED_STATE says whether L2 is
 * still in guest mode, and otherwise L1 is put back on its loop and reads the VM-exit reason with
 * VMREAD, as a hypervisor would at its host RIP.
 */

/* KVM_GET_NESTED_STATE's flags (KVM_STATE_NESTED_*), or -1 */
static int nested_flags(struct vcpu *v)
{
	static union {
		struct kvm_nested_state s;
		uint8_t bytes[16384];
	} buf;
	memset(&buf.s, 0, sizeof(buf.s));
	buf.s.size = sizeof(buf);
	if (ioctl(v->fd, KVM_GET_NESTED_STATE, &buf.s) < 0)
		return -1;
	return buf.s.flags;
}

/* Puts L1 back on its loop after a VM-exit to vmcs12's host state; KVM_RUN with immediate_exit
 * first completes any I/O or MMIO the stray L1 left pending, which would move the new RIP. */
static answer l1_reset(struct vcpu *v)
{
	v->run->immediate_exit = 1;
	int r = ioctl(v->fd, KVM_RUN, 0);
	int e = errno;
	v->run->immediate_exit = 0;
	if (r < 0 && e != EINTR) {
		errno = e;
		return failedf("KVM_RUN (immediate exit) before resetting L1");
	}
	answer a = l1_registers(v, 1);
	if (strcmp(a.status, "ok"))
		return a;
	v->l1_started = 0;
	return l1_ready(v);
}

/* L1's VMREAD of the current VMCS; fails unless it succeeded */
static answer l1_vmread(struct vcpu *v, uint64_t field, uint64_t *value)
{
	int port;
	answer a = l1_request(v, OP_VMREAD, field, 0, "VMREAD", &port);
	if (strcmp(a.status, "ok"))
		return a;
	uint8_t *mb = v->mem + L1_MAILBOX;
	if (port != L1_PORT_READY || get64(mb + MB_EXCEPTION) || (get64(mb + MB_RFLAGS) & 0x41)) {
		snprintf(reason_buf, sizeof(reason_buf), "VMREAD 0x%llx after a VM-exit to L1 did not succeed", (unsigned long long)field);
		return failed(reason_buf);
	}
	*value = get64(mb + MB_VALUE);
	return OK;
}

/* Seconds of this kernel's monotonic clock since *t0 */
static double seconds_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The period of the signal that stops a KVM_RUN blocked in KVM: a short one, because while the
 * machine idles Bochs lets guest time crawl (a 2 s alarm for an L2 in wait-for-SIPI took 35-80 s
 * of real time, README K13); 20 ms of it is far more than an entry needs. */
#define ENTRY_TICK_US 20000

/* KVM_RUN until L1 waits at its loop again (*ready) or the run stops anywhere else. A run still in
 * guest mode when the tick interrupts it was entered (an L2 in wait-for-SIPI or HLT blocks in KVM
 * until a signal); one that is not runs on, up to the watchdog. */
static answer entry_run(struct vcpu *v, const char *what, int *ready)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	*ready = 0;
	for (;;) {
		struct itimerval tick = { .it_value = { .tv_usec = ENTRY_TICK_US } }, off = { 0 };
		setitimer(ITIMER_REAL, &tick, NULL);
		int r = ioctl(v->fd, KVM_RUN, 0);
		int e = errno;
		setitimer(ITIMER_REAL, &off, NULL);
		int flags = nested_flags(v);
		if (r < 0 && e == EINTR) {
			if (flags >= 0 && (flags & KVM_STATE_NESTED_GUEST_MODE))
				return OK;
			if (seconds_since(&t0) > WATCHDOG_SECONDS) {
				snprintf(reason_buf, sizeof(reason_buf), "%s: neither L1 nor L2 stopped within %d s (watchdog)", what, WATCHDOG_SECONDS);
				return failed(reason_buf);
			}
			continue;
		}
		if (r < 0) {
			errno = e;
			return failedf(what);
		}
		*ready = v->run->exit_reason == KVM_EXIT_IO && v->run->io.port == L1_PORT_READY && flags >= 0 && !(flags & KVM_STATE_NESTED_GUEST_MODE);
		return OK;
	}
}

/* After a run left L1's loop: "ok" while L2 is in guest mode (entered: the KVM_RUN that emulated the
 * instruction also entered L2, so no entry is pending as it is after the model's VMLAUNCH) or after
 * an L2 VM-exit to L1 (exited), "vmexit" with the exit reason when the entry itself failed (bit 31),
 * as L1 reads them. */
static answer entry_outcome(struct vcpu *v, const char *what, jbuf *val)
{
	int flags = nested_flags(v);
	if (flags < 0)
		return failedf("KVM_GET_NESTED_STATE after a VM-entry");
	if (flags & KVM_STATE_NESTED_GUEST_MODE) {
		jb_str(val, "{\"result\":\"ok\",\"l2\":\"entered\"}");
		return OK;
	}
	uint64_t reason, qual;
	answer a = l1_reset(v);
	if (!strcmp(a.status, "ok"))
		a = l1_vmread(v, 0x4402, &reason);
	if (!strcmp(a.status, "ok"))
		a = l1_vmread(v, 0x6400, &qual);
	if (strcmp(a.status, "ok"))
		return a;
	if (!(reason & 0x80000000u)) { /* L2 ran to its first stop and exited to L1 */
		jb_str(val, "{\"result\":\"ok\",\"l2\":\"exited\"}");
		return OK;
	}
	snprintf(reason_buf, sizeof(reason_buf), "%s: VM-entry failure, exit reason 0x%llx, qualification %llu", what, (unsigned long long)reason, (unsigned long long)qual);
	jb_str(val, "{\"result\":\"vmexit\",\"error\":");
	jb_u64(val, reason);
	jb_str(val, ",\"reason\":");
	jb_qstr(val, reason_buf);
	jb_str(val, "}");
	return OK;
}

#define IN_SMM "VMX instructions inside SMM need a 64-bit SMM handler, which the agent does not have (a vCPU put in SMM by a restore runs L1's code with SMM's flag: no answer a real SMM could give)"

/* An instruction that may enter L2 (VMLAUNCH, VMRESUME, an RSM back into L2), run as a VM-entry:
 * its result as L1 saw it if it fell through to L1's loop, else the entry's outcome. */
static answer l1_enters(struct vcpu *v, uint64_t op, const char *what, jbuf *val)
{
	uint8_t *mb = v->mem + L1_MAILBOX;
	put64(mb + MB_OP, op);
	int ready;
	answer a = entry_run(v, what, &ready);
	put64(mb + MB_OP, OP_NOP);
	if (strcmp(a.status, "ok"))
		return a;
	if (ready) /* it fell through: a VMfail, or an RSM that stayed in L1 */
		return l1_result(v, op, what, L1_PORT_READY, val);
	return entry_outcome(v, what, val);
}

/* VMLAUNCH or VMRESUME by L1 (also an enlightened entry: KVM maps the eVMCS the VP-assist page names) */
static answer l1_entry(struct vcpu *v, int launch, jbuf *val)
{
	const char *what = launch ? "VMLAUNCH" : "VMRESUME";
	if (v->in_smm)
		return unsupported(IN_SMM);
	int flags = nested_flags(v);
	if (flags >= 0 && (flags & KVM_STATE_NESTED_GUEST_MODE))
		return unsupported("L2 is running: L1 runs again only after an L2 VM-exit, and the agent cannot make L2 exit with a chosen reason");
	answer a = l1_ready(v);
	if (strcmp(a.status, "ok"))
		return a;
	return l1_enters(v, launch ? OP_VMLAUNCH : OP_VMRESUME, what, val);
}

/* KVM_RUN of a vCPU in guest mode (restored, or entered): L2 runs until it stops, as a VMM's run does */
static answer l2_run(struct vcpu *v, jbuf *val)
{
	int ready;
	answer a = entry_run(v, "KVM_RUN", &ready);
	if (strcmp(a.status, "ok"))
		return a;
	if (ready) {
		jb_str(val, "{\"result\":\"ok\"}");
		return OK;
	}
	if (v->run->exit_reason == KVM_EXIT_INTERNAL_ERROR) /* reported as l1_op reports one */
		return l1_result(v, OP_NOP, "KVM_RUN", -(int)v->run->internal.suberror - 1, val);
	int flags = nested_flags(v);
	if (flags >= 0 && !(flags & KVM_STATE_NESTED_GUEST_MODE)) {
		a = l1_reset(v);
		if (strcmp(a.status, "ok"))
			return a;
		jb_str(val, "{\"result\":\"ok\",\"l2\":\"exited\"}"); /* L2 ran on and exited to L1 */
		return OK;
	}
	jb_str(val, "{\"result\":\"ok\",\"l2\":\"entered\"}"); /* L2 ran its code and stays in guest mode */
	return OK;
}

static answer smm_entry(struct vcpu *v, jbuf *val)
{
	if (v->in_smm)
		return unsupported("an SMI while in SMM stays pending on real hardware; the model answers #UD by convention");
	/* an SMI while L2 runs exits to L1 first (vmx_enter_smm) */
	int flags = nested_flags(v);
	int from_l2 = flags >= 0 && (flags & KVM_STATE_NESTED_GUEST_MODE);
	answer a = from_l2 ? OK : l1_ready(v);
	if (strcmp(a.status, "ok"))
		return a;
	if (ioctl(v->fd, KVM_SMI, 0) < 0)
		return failedf("KVM_SMI");
	int port = L1_PORT_READY;
	put64(v->mem + L1_MAILBOX + MB_OP, OP_NOP);
	/* KVM injects the SMI at an instruction boundary it chooses: L1 may first go once more round
	 * its loop (a NOP) and wait again */
	for (int round = 0; round < 4 && port == L1_PORT_READY; round++)
		if (strcmp((a = l1_run(v, "smm-entry", &port)).status, "ok"))
			return a;
	if (port != L1_PORT_SMM)
		return failed("smm-entry: KVM_SMI did not bring the vCPU into SMM");
	v->in_smm = 1;
	v->smm_from_l2 = from_l2;
	jb_str(val, "{\"result\":\"ok\"}");
	return OK;
}

/* RSM in the SMM handler of an SMI that came while L2 ran: vmx_leave_smm enters L2 again, which
 * runs its code, so the run is followed as a VM-entry's is (entry_outcome). */
static answer rsm_to_l2(struct vcpu *v, jbuf *val)
{
	answer a = l1_enters(v, OP_RSM, "RSM", val);
	if (!strcmp(a.status, "ok"))
		v->in_smm = v->smm_from_l2 = 0;
	return a;
}

/* The Hyper-V VP-assist page: enable it by MSR (host-initiated, as a VMM restores it) and fill
 * in enlighten_vmentry (byte 40) and current_nested_vmcs (bytes 48..55), TLFS layout. */
static answer set_vp_assist(struct vcpu *v, const jnode *op)
{
	uint64_t cur = 0;
	int enlighten = 0;
	json_u64(json_get(op, "currentNestedVmcs"), &cur);
	json_bool(json_get(op, "enlightenVmentry"), &enlighten);
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[1];
	} m = { .h = { .nmsrs = 1 }, .e = { { .index = 0x40000073, .data = L1_VP_ASSIST | 1 } } };
	int r = ioctl(v->fd, KVM_SET_MSRS, &m);
	if (r < 0)
		return failedf("KVM_SET_MSRS(HV_X64_MSR_VP_ASSIST_PAGE)");
	if (r < 1)
		return unsupported("KVM refuses the VP-assist MSR on this vCPU (no Hyper-V CPUID)");
	v->mem[L1_VP_ASSIST + 40] = (uint8_t)enlighten;
	put64(v->mem + L1_VP_ASSIST + 48, cur);
	return OK;
}

/* A vCPU configured as a VMM would before restoring (create-vcpu's config); *out on success. */
static answer new_vcpu(const jnode *cfg, struct vcpu **out)
{
	answer a = ensure_nested(cfg_bool(cfg, "nested", 1));
	if (strcmp(a.status, "ok"))
		return a;
	struct vcpu *v = NULL;
	for (unsigned i = 0; i < MAX_VCPUS && !v; i++)
		if (!vcpus[i].used)
			v = &vcpus[i];
	if (!v) /* properties do not always destroy what they create: the oldest goes */
		for (unsigned i = 0; i < MAX_VCPUS; i++)
			if (!v || vcpus[i].id < v->id)
				v = &vcpus[i];
	destroy(v);
	struct vm_parts p;
	const char *what;
	if (!take_spare(&p) && make_parts(kvm_fd, &p, &what) < 0)
		return failedf(what);
	v->vm = p.vm;
	v->fd = p.fd;
	v->mem = p.mem;
	v->run = p.run;
	v->used = 1;
	v->id = next_handle++;
	v->run_size = (size_t)vcpu_mmap_size;
	a = set_cpuid(v, cfg);
	if (!strcmp(a.status, "ok"))
		a = l1_setup(v, cfg_bool(cfg, "vmxInCpuid", 1) && nested_loaded == 1);
	if (!strcmp(a.status, "ok"))
		a = set_vmx_msrs(v, cfg);
	if (!strcmp(a.status, "ok") && cfg_bool(cfg, "evmcsEnabled", 0))
		a = enable_evmcs(v);
	if (!strcmp(a.status, "ok") && cfg_bool(cfg, "inSmm", 0) && !strcmp((a = enter_smm(v)).status, "ok"))
		v->in_smm = v->smm_by_events = 1;
	if (strcmp(a.status, "ok")) {
		destroy(v);
		return a;
	}
	*out = v;
	return OK;
}

static answer op_create_vcpu(const jnode *args, jbuf *val)
{
	jnode *cfg = json_get(args, "config");
	struct vcpu *v;
	if (!cfg || cfg->type != 'o')
		return failed("create-vcpu needs a config object");
	answer a = new_vcpu(cfg, &v);
	if (strcmp(a.status, "ok"))
		return a;
	char h[24];
	snprintf(h, sizeof(h), "\"v%u\"", v->id);
	jb_str(val, h);
	return OK;
}

/* A user buffer of exactly `len` bytes that ends where an unmapped page begins, so the kernel's
 * reads and writes past it fault (-EFAULT) as they would past a VMM's own allocation. */
static uint8_t *guarded(size_t len, void **base, size_t *maplen)
{
	size_t data = (len + PAGE - 1) / PAGE * PAGE;
	*maplen = data + PAGE;
	uint8_t *p = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	mprotect(p + data, PAGE, PROT_NONE);
	*base = p;
	return p + data - len;
}

static int hex_decode(const jnode *n, uint8_t **out, size_t *len)
{
	if (!n || n->type != 's' || n->len % 2)
		return -1;
	*len = n->len / 2;
	*out = malloc(*len ? *len : 1);
	if (!*out)
		return -1;
	for (size_t i = 0; i < *len; i++) {
		int hi = 0, lo = 0;
		char a = n->str[2 * i], b = n->str[2 * i + 1];
		hi = a >= '0' && a <= '9' ? a - '0' : a >= 'a' && a <= 'f' ? a - 'a' + 10 : -1;
		lo = b >= '0' && b <= '9' ? b - '0' : b >= 'a' && b <= 'f' ? b - 'a' + 10 : -1;
		if (hi < 0 || lo < 0) {
			free(*out);
			return -1;
		}
		(*out)[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* "errno": the ioctl's errno name, or null when it succeeded */
static void jb_errno(jbuf *val, int r, int e)
{
	jb_str(val, "\"errno\":");
	if (r < 0)
		jb_qstr(val, errno_name(e));
	else
		jb_str(val, "null");
}

static answer op_set_nested_state(const jnode *args, jbuf *val)
{
	struct vcpu *v = find_vcpu(args);
	if (!v)
		return failed("unknown vcpu handle");
	jnode *blob = json_get(args, "blob");
	int r;
	if (blob && blob->type == 'z') {
		r = ioctl(v->fd, KVM_SET_NESTED_STATE, NULL);
	} else {
		uint8_t *bytes;
		size_t len, maplen;
		void *base;
		if (hex_decode(blob, &bytes, &len))
			return failed("blob must be hex or null");
		uint8_t *buf = guarded(len, &base, &maplen);
		if (!buf) {
			free(bytes);
			return failed("out of memory");
		}
		memcpy(buf, bytes, len);
		free(bytes);
		r = ioctl(v->fd, KVM_SET_NESTED_STATE, buf);
		munmap(base, maplen);
	}
	int e = errno;
	jb_str(val, "{\"ret\":");
	jb_i64(val, r < 0 ? -e : r);
	jb_str(val, ",");
	jb_errno(val, r, e);
	jb_str(val, ",\"rule\":\"\"}");
	return OK;
}

/* GET twice, into buffers prefilled with 0x00 and with 0xff: a byte KVM stored differs from its
 * prefill in at least one of them, so `written` is the end of what KVM stored, whatever it stored.
 * `userSize` is what the VMM declares in the header's size field; its struct always holds that
 * field, so the buffer is at least 8 bytes, and it ends where an unmapped page begins. */
static answer op_get_nested_state(const jnode *args, jbuf *val)
{
	struct vcpu *v = find_vcpu(args);
	uint64_t user_size;
	if (!v)
		return failed("unknown vcpu handle");
	if (json_u64(json_get(args, "userSize"), &user_size) || user_size > (1u << 20))
		return failed("userSize must be 0..1048576");
	size_t len = user_size < 8 ? 8 : user_size, written = 0;
	uint32_t declared = (uint32_t)user_size;
	int r0 = 0, e0 = 0;
	uint8_t *answer0 = NULL;
	for (int pass = 0; pass < 2; pass++) {
		void *base;
		size_t maplen;
		uint8_t fill = pass ? 0xff : 0x00;
		uint8_t *buf = guarded(len, &base, &maplen);
		if (!buf) {
			free(answer0);
			return failed("out of memory");
		}
		memset(buf, fill, len);
		memcpy(buf + 4, &declared, 4);
		int r = ioctl(v->fd, KVM_GET_NESTED_STATE, buf);
		int e = errno;
		for (size_t i = len; i > written; i--)
			if ((i - 1 < 4 || i - 1 >= 8) && buf[i - 1] != fill) {
				written = i;
				break;
			}
		if (memcmp(buf + 4, &declared, 4) && written < 8)
			written = 8;
		if (!pass) {
			r0 = r, e0 = e;
			answer0 = malloc(len);
			if (answer0)
				memcpy(answer0, buf, len);
		}
		munmap(base, maplen);
		if (!answer0)
			return failed("out of memory");
	}
	uint32_t size;
	memcpy(&size, answer0 + 4, 4);
	jb_str(val, "{");
	jb_errno(val, r0, e0);
	jb_str(val, ",\"size\":");
	jb_u64(val, size);
	jb_str(val, ",\"buffer\":");
	jb_bytes(val, answer0, user_size);
	jb_str(val, ",\"written\":");
	jb_u64(val, written);
	jb_str(val, "}");
	free(answer0);
	return OK;
}

static answer op_destroy_vcpu(const jnode *args, jbuf *val)
{
	struct vcpu *v = find_vcpu(args);
	if (!v)
		return failed("unknown vcpu handle");
	destroy(v);
	jb_str(val, "null");
	return OK;
}

static answer mem_store(struct vcpu *v, uint64_t pa, const void *p, size_t n)
{
	if (pa > GUEST_MEM || n > GUEST_MEM - pa) {
		snprintf(reason_buf, sizeof(reason_buf), "guest-physical 0x%llx is outside this target's %u MiB of guest memory", (unsigned long long)pa, GUEST_MEM >> 20);
		return unsupported(reason_buf);
	}
	if ((pa < L1_AREA_END && pa + n > L1_AREA) || (pa < SMM_AREA_END && pa + n > SMM_BASE)) {
		snprintf(reason_buf, sizeof(reason_buf), "guest-physical 0x%llx is reserved for the agent's L1 guest (0x%x-0x%x, SMRAM 0x%x-0x%x)", (unsigned long long)pa, L1_AREA, L1_AREA_END, SMM_BASE, SMM_AREA_END);
		return unsupported(reason_buf);
	}
	memcpy(v->mem + pa, p, n);
	return OK;
}

#define ENTRIES_OFF "VM-entries on generated guests are off in this run (kvm:<kernel>,entries=off); they are on by default"

/* The VMX instructions a guest-op names, and their operands (a VMCS address, or a field and value). */
struct vmx_insn {
	uint64_t op, arg0, arg1;
	const char *what;
};

static int vmx_insn_of(const jnode *op, struct vmx_insn *in)
{
	static const struct { const char *name; uint64_t op; const char *what; } VMX[] = {
		{ "vmxon", OP_VMXON, "VMXON" }, { "vmxoff", OP_VMXOFF, "VMXOFF" }, { "vmptrld", OP_VMPTRLD, "VMPTRLD" },
		{ "vmclear", OP_VMCLEAR, "VMCLEAR" }, { "vmwrite", OP_VMWRITE, "VMWRITE" }, { "vmread", OP_VMREAD, "VMREAD" },
	};
	const jnode *name = json_get(op, "op");
	if (!name || name->type != 's')
		return 0;
	for (size_t i = 0; i < sizeof(VMX) / sizeof(VMX[0]); i++) {
		if (strcmp(name->str, VMX[i].name))
			continue;
		uint64_t pa = 0, field = 0, value = 0;
		json_u64(json_get(op, "pa"), &pa);
		json_u64(json_get(op, "field"), &field);
		json_u64(json_get(op, "value"), &value);
		*in = (struct vmx_insn){ VMX[i].op, VMX[i].op == OP_VMWRITE || VMX[i].op == OP_VMREAD ? field : pa, value, VMX[i].what };
		return 1;
	}
	return 0;
}

/*
 * VMPTRLD while an eVMCS is in use: handle_vmptrld returns without a VMfail and without retiring
 * the instruction, so L1 executes it again and again (README K13: in Bochs the whole machine then
 * stops answering). The model answers VMfailInvalid there, an assumption (audit F11).
 */
#define VMPTRLD_SPINS "VMPTRLD while an eVMCS is in use: KVM neither fails nor retires it (L1 would execute it forever, and the emulated machine hangs: README K13)"

/* L1 cannot execute an instruction while L2 runs: the agent would KVM_RUN into L2, and an L2 in HLT
 * or wait-for-SIPI blocks there (the watchdog's guest time crawls while Bochs idles: minutes), one
 * that spins hangs Bochs. The model answers such an operation by its own convention (#UD); a real
 * vCPU cannot be asked. */
#define L2_RUNS "L1 cannot execute this while L2 is in guest mode (KVM_GET_NESTED_STATE): KVM_RUN would resume the L2, which may halt, wait for SIPI or spin there; the model's answer (#UD) is a convention a real vCPU cannot show"

static int nested_flags(struct vcpu *v);
static int in_l2(struct vcpu *v)
{
	int flags = nested_flags(v);
	return flags >= 0 && (flags & KVM_STATE_NESTED_GUEST_MODE);
}

static int vmptrld_spins(struct vcpu *v, const struct vmx_insn *in)
{
	if (in->op != OP_VMPTRLD)
		return 0;
	int flags = nested_flags(v);
	return flags >= 0 && (flags & KVM_STATE_NESTED_EVMCS);
}

/* The operations a VMM does (capabilities, guest memory). VMX instructions need the L1 guest. */
static answer op_guest_op(const jnode *args, jbuf *val)
{
	struct vcpu *v = find_vcpu(args);
	jnode *op = json_get(args, "op"), *name = json_get(op, "op");
	uint64_t pa = 0, value = 0, rev = 1;
	int shadow = 0;
	answer a;
	if (!v)
		return failed("unknown vcpu handle");
	if (!name || name->type != 's')
		return failed("guest-op needs op.op");
	json_u64(json_get(op, "pa"), &pa);
	if (!strcmp(name->str, "enable-evmcs")) {
		a = enable_evmcs(v);
	} else if (!strcmp(name->str, "write-memory")) {
		if (json_u64(json_get(op, "value"), &value))
			return failed("write-memory needs a value");
		a = mem_store(v, pa & ~7ull, &value, 8);
	} else if (!strcmp(name->str, "init-vmcs") || !strcmp(name->str, "init-evmcs")) {
		static const uint8_t zero[PAGE];
		json_bool(json_get(op, "shadow"), &shadow);
		json_u64(json_get(op, "revision"), &rev);
		uint32_t hdr = name->str[5] == 'v' ? vmcs12_revision | (shadow ? 0x80000000u : 0) : (uint32_t)rev;
		a = mem_store(v, pa & ~(uint64_t)(PAGE - 1), zero, PAGE);
		if (!strcmp(a.status, "ok"))
			a = mem_store(v, pa & ~(uint64_t)(PAGE - 1), &hdr, 4);
	} else if (!strcmp(name->str, "set-vp-assist")) {
		a = set_vp_assist(v, op);
	} else if (!strcmp(name->str, "smm-entry") || !strcmp(name->str, "rsm")) {
		if (name->str[0] == 's')
			return smm_entry(v, val);
		if (v->smm_by_events)
			return unsupported("the vCPU was put in SMM by KVM_SET_VCPU_EVENTS (a restore), not by an SMI: SMRAM holds no state-save area of it (a VMM migrates SMRAM with the RAM; the guest memory this target is given is only what the guest wrote), so RSM would load garbage");
		if (v->in_smm)
			return v->smm_from_l2 ? rsm_to_l2(v, val) : l1_op(v, OP_RSM, 0, 0, "RSM", val);
		/* outside SMM L1 executes RSM (a #UD), which it cannot while L2 runs */
		return in_l2(v) ? unsupported(L2_RUNS) : l1_op(v, OP_RSM, 0, 0, "RSM", val);
	} else if (!strcmp(name->str, "get-mp-state")) {
		struct kvm_mp_state m = { 0 };
		if (ioctl(v->fd, KVM_GET_MP_STATE, &m) < 0)
			return failedf("KVM_GET_MP_STATE");
		jb_str(val, "{\"result\":\"ok\",\"value\":");
		jb_hex64(val, m.mp_state);
		jb_str(val, "}");
		return OK;
	} else if (!strcmp(name->str, "set-mp-state")) {
		uint64_t state = 0;
		if (json_u64(json_get(op, "state"), &state) || state > 0xffffffffu)
			return failed("set-mp-state needs a 32-bit state");
		struct kvm_mp_state m = { .mp_state = (uint32_t)state };
		if (ioctl(v->fd, KVM_SET_MP_STATE, &m) < 0) {
			if (errno != EINVAL)
				return failedf("KVM_SET_MP_STATE");
			jb_str(val, "{\"result\":\"EINVAL\",\"reason\":\"KVM_SET_MP_STATE answered EINVAL\"}");
			return OK;
		}
		a = OK;
	} else if (!strcmp(name->str, "run")) {
		int flags = nested_flags(v);
		if (flags >= 0 && (flags & KVM_STATE_NESTED_GUEST_MODE))
			return l2_run(v, val);
		if (!v->l1_started) {
			/* the vCPU's first KVM_RUN (after a restore: KVM serves the nested-state pages request
			 * here, and may answer KVM_EXIT_INTERNAL_ERROR, which is this operation's result) */
			int port;
			a = l1_run(v, "KVM_RUN", &port);
			if (strcmp(a.status, "ok"))
				return a;
			if (port < 0)
				return l1_result(v, OP_NOP, "KVM_RUN", port, val);
			if (port != L1_PORT_READY)
				return failed("KVM_RUN: the L1 guest did not reach its loop");
			v->l1_started = 1;
		}
		return l1_op(v, OP_NOP, 0, 0, "KVM_RUN", val);
	} else if (!entries_on && (!strcmp(name->str, "vmlaunch") || !strcmp(name->str, "vmresume") || !strcmp(name->str, "evmcs-entry"))) {
		return unsupported(ENTRIES_OFF);
	} else if (!strcmp(name->str, "vmlaunch") || !strcmp(name->str, "vmresume")) {
		return l1_entry(v, !strcmp(name->str, "vmlaunch"), val);
	} else if (!strcmp(name->str, "evmcs-entry")) {
		int launch = 0;
		json_bool(json_get(op, "launch"), &launch);
		return l1_entry(v, launch, val);
	} else {
		struct vmx_insn in;
		if (vmx_insn_of(op, &in)) {
			if (v->in_smm)
				return unsupported(IN_SMM);
			if (vmptrld_spins(v, &in))
				return unsupported(VMPTRLD_SPINS);
			if (in_l2(v))
				return unsupported(L2_RUNS);
			return l1_op(v, in.op, in.arg0, in.arg1, in.what, val);
		}
		snprintf(reason_buf, sizeof(reason_buf), "guest-op %s: the agent cannot make L2 exit with a chosen reason or set MTF pending", name->str);
		return unsupported(reason_buf);
	}
	if (!strcmp(a.status, "ok"))
		jb_str(val, "{\"result\":\"ok\"}");
	return a;
}

/* ---- scripts: many L1 instructions in one KVM_RUN ---- */

#define SCRIPT_MAX ((L1_AREA_END - L1_SCRIPT) / SCRIPT_ENTRY)

static uint8_t *script_entry(struct vcpu *v, size_t i) { return v->mem + L1_SCRIPT + i * SCRIPT_ENTRY; }

static void script_put(struct vcpu *v, size_t i, uint64_t op, uint64_t arg0, uint64_t arg1)
{
	uint8_t *e = script_entry(v, i);
	memset(e, 0, SCRIPT_ENTRY);
	put64(e + MB_OP, op);
	put64(e + MB_ARG0, arg0);
	put64(e + MB_ARG1, arg1);
}

/* Runs the n entries at L1_SCRIPT; each entry then holds its RFLAGS, value and VM-instruction error. */
static answer l1_script(struct vcpu *v, size_t n, const char *what)
{
	int port;
	answer a = l1_request(v, OP_SCRIPT, n, 0, what, &port);
	if (strcmp(a.status, "ok"))
		return a;
	uint64_t exc = get64(v->mem + L1_MAILBOX + MB_EXCEPTION);
	if (port < 0 || port != L1_PORT_READY || exc) {
		snprintf(reason_buf, sizeof(reason_buf), "%s: the L1 guest's script stopped (%s%llu)", what,
			 port < 0 ? internal_error_name(-port - 1) : exc ? "exception " : "port ", (unsigned long long)(port < 0 ? 0 : exc ? exc - 1 : (uint64_t)port));
		return failed(reason_buf);
	}
	return OK;
}

/* A temporary vCPU for an operation that needs one of its own; `cfg_text` is a create-vcpu config. */
static answer scratch_vcpu(char *cfg_text, size_t len, struct vcpu **out)
{
	const char *err;
	jnode *cfg = json_parse_more(cfg_text, len, &err); /* the request's nodes stay valid */
	return cfg ? new_vcpu(cfg, out) : failed("internal: a scratch vCPU config did not parse");
}

#define VMXON_PA 0x1000
#define VMCS_PA 0x2000

/* vmcs12-access through the instruction path: L1 executes VMXON, VMPTRLD of the page, and each
 * VMREAD/VMWRITE (a write is followed by a VMREAD of the same field: the value now stored), so
 * KVM's handle_vmread/handle_vmwrite answer; the page comes back from KVM_GET_NESTED_STATE. The
 * page's header dword is made this KVM's vmcs12 revision (else VMPTRLD refuses it) and restored in
 * the answer: VMREAD/VMWRITE never touch it. */
static int is_write(const jnode *op)
{
	const jnode *name = json_get(op, "op");
	return name && name->type == 's' && !strcmp(name->str, "write");
}

static answer op_vmcs12_access(const jnode *args, jbuf *val)
{
	uint8_t *page;
	size_t len, n = 2;
	jnode *ops = json_get(args, "ops");
	if (hex_decode(json_get(args, "page"), &page, &len))
		return failed("page must be hex");
	if (len > PAGE || len < 8 || !ops || ops->type != 'a') {
		free(page);
		return failed("vmcs12-access needs a page of 8..4096 bytes and an ops array");
	}
	for (jnode *o = ops->child; o; o = o->next)
		n += is_write(o) ? 2 : 1;
	if (n > SCRIPT_MAX) {
		free(page);
		snprintf(reason_buf, sizeof(reason_buf), "vmcs12-access: at most %u instructions per request", (unsigned)SCRIPT_MAX);
		return failed(reason_buf);
	}
	char cfg[] = "{}";
	struct vcpu *v;
	answer a = scratch_vcpu(cfg, 2, &v);
	if (strcmp(a.status, "ok")) {
		free(page);
		return a;
	}
	memset(v->mem + VMXON_PA, 0, 2 * PAGE);
	memcpy(v->mem + VMXON_PA, &vmcs12_revision, 4);
	memcpy(v->mem + VMCS_PA, page, len);
	memcpy(v->mem + VMCS_PA, &vmcs12_revision, 4);
	size_t i = 0;
	script_put(v, i++, OP_VMXON, VMXON_PA, 0);
	script_put(v, i++, OP_VMPTRLD, VMCS_PA, 0);
	for (jnode *o = ops->child; o; o = o->next) {
		uint64_t enc = 0, value = 0;
		int write = is_write(o);
		if (json_u64(json_get(o, "encoding"), &enc) || (write && json_u64(json_get(o, "value"), &value))) {
			destroy(v);
			free(page);
			return failed("every op needs an encoding (and a write a value)");
		}
		if (write)
			script_put(v, i++, OP_VMWRITE, enc, value);
		script_put(v, i++, OP_VMREAD, enc, 0);
	}
	a = l1_script(v, i, "vmcs12-access");
	for (size_t k = 0; k < 2 && !strcmp(a.status, "ok"); k++)
		if (get64(script_entry(v, k) + MB_RFLAGS) & 0x41) {
			snprintf(reason_buf, sizeof(reason_buf), "vmcs12-access: %s failed (error %llu)", k ? "VMPTRLD" : "VMXON", (unsigned long long)get64(script_entry(v, k) + MB_ERROR));
			a = failed(reason_buf);
		}
	uint8_t *state = NULL;
	if (!strcmp(a.status, "ok")) {
		uint32_t size = 128 + 2 * PAGE;
		state = calloc(1, size);
		if (!state) {
			a = failed("out of memory");
		} else {
			memcpy(state + 4, &size, 4);
			if (ioctl(v->fd, KVM_GET_NESTED_STATE, state) < 0)
				a = failedf("vmcs12-access: KVM_GET_NESTED_STATE");
		}
	}
	if (!strcmp(a.status, "ok")) {
		jb_str(val, "{\"results\":[");
		i = 2;
		for (jnode *o = ops->child; o; o = o->next) {
			int write = is_write(o);
			uint8_t *e = script_entry(v, i);
			if (write && !(get64(e + MB_RFLAGS) & 0x41))
				e = script_entry(v, i + 1); /* the write succeeded: the VMREAD after it says what is stored */
			i += write ? 2 : 1;
			uint64_t fl = get64(e + MB_RFLAGS);
			if (fl & 1) {
				a = failed("vmcs12-access: VMfailInvalid with a current VMCS loaded");
				break;
			}
			if (fl & 0x40) {
				jb_str(val, "{\"ok\":false,\"vmfail\":\"valid\",\"error\":");
				jb_u64(val, get64(e + MB_ERROR));
				jb_str(val, ",\"reason\":\"VMfailValid\"}");
			} else {
				jb_str(val, "{\"ok\":true,\"value\":");
				jb_hex64(val, get64(e + MB_VALUE));
				jb_str(val, "}");
			}
			if (o->next)
				jb_str(val, ",");
		}
		memcpy(state + 128, page, 4);
		jb_str(val, "],\"page\":");
		jb_bytes(val, state + 128, len);
		jb_str(val, "}");
	}
	free(state);
	free(page);
	destroy(v);
	return a;
}

/* filter-vmx-msrs: what the guest's RDMSR sees. A scratch vCPU with the Hyper-V CPUID (0x4000000A
 * EBX as given), the eVMCS capability on, and the given values restored host-initiated (a value
 * KVM refuses makes the case one this target cannot run: unsupported); then L1 reads each MSR. */
static answer op_evmcs_check_controls(const jnode *args, jbuf *val)
{
	(void)args, (void)val;
	return unsupported("nested_evmcs_check_controls runs only inside VM-entry and restore checks, after checks a bare vmcs12 page fails first; the agent cannot isolate it");
}

static answer op_filter_vmx_msrs(const jnode *args, jbuf *val)
{
	jnode *msrs = json_get(args, "msrs");
	uint64_t ebx = 0;
	size_t n = 0;
	if (!msrs || msrs->type != 'a' || json_u64(json_get(args, "hvNestedEbx"), &ebx))
		return failed("filter-vmx-msrs needs msrs and hvNestedEbx");
	jbuf cfg = { 0 };
	jb_str(&cfg, "{\"evmcsEnabled\":true,\"hypervCpuid\":{\"nestedEax\":0,\"nestedEbx\":");
	jb_u64(&cfg, ebx & 0xffffffffu);
	jb_str(&cfg, "},\"vmxMsrs\":{");
	for (jnode *m = msrs->child; m; m = m->next, n++) {
		uint64_t index, value;
		if (json_u64(json_get(m, "index"), &index) || json_u64(json_get(m, "value"), &value) || index < 0x480 || index > 0x491) {
			free(cfg.p);
			return failed("every msr needs an index 0x480..0x491 and a value");
		}
		char kv[64];
		snprintf(kv, sizeof(kv), "%s\"0x%llx\":", n ? "," : "", (unsigned long long)index);
		jb_str(&cfg, kv);
		jb_hex64(&cfg, value);
	}
	jb_str(&cfg, "}}");
	jb_raw(&cfg, "", 1); /* the parser terminates strings in place: one writable byte past the end */
	cfg.len--;
	if (cfg.failed || n > SCRIPT_MAX) {
		free(cfg.p);
		return failed("filter-vmx-msrs: request too large");
	}
	struct vcpu *v;
	answer a = scratch_vcpu(cfg.p, cfg.len, &v);
	free(cfg.p);
	if (strcmp(a.status, "ok"))
		return a;
	size_t i = 0;
	for (jnode *m = msrs->child; m; m = m->next) {
		uint64_t index;
		json_u64(json_get(m, "index"), &index);
		script_put(v, i++, OP_RDMSR, index, 0);
	}
	a = l1_script(v, i, "filter-vmx-msrs (RDMSR)");
	if (!strcmp(a.status, "ok")) {
		jb_str(val, "[");
		for (size_t k = 0; k < i; k++) {
			jb_str(val, k ? "," : "");
			jb_hex64(val, get64(script_entry(v, k) + MB_VALUE));
		}
		jb_str(val, "]");
	}
	destroy(v);
	return a;
}

/* ---- dispatch ---- */

static const struct {
	const char *op;
	answer (*fn)(const jnode *, jbuf *);
} OPS[] = {
	{ "create-vcpu", op_create_vcpu },
	{ "set-nested-state", op_set_nested_state },
	{ "get-nested-state", op_get_nested_state },
	{ "destroy-vcpu", op_destroy_vcpu },
	{ "guest-op", op_guest_op },
	{ "vmcs12-access", op_vmcs12_access },
	{ "filter-vmx-msrs", op_filter_vmx_msrs },
	{ "evmcs-check-controls", op_evmcs_check_controls },
};

static void emit(jbuf *out, uint64_t id, answer a, jbuf *val);

static void respond(jbuf *out, const jnode *req)
{
	uint64_t id;
	jnode *op = json_get(req, "op"), *args = json_get(req, "args");
	jbuf val = { 0 };
	answer a = unsupported("unknown op");
	if (json_u64(json_get(req, "id"), &id) || !op || op->type != 's') {
		id = 0;
		a = failed("a request needs a numeric id and an op");
	} else if (kvm_fd < 0) {
		a = failed(kvm_problem);
	} else {
		for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++)
			if (!strcmp(OPS[i].op, op->str)) {
				a = OPS[i].fn(args, &val);
				break;
			}
		if (!strcmp(a.status, "unsupported") && !strcmp(a.reason, "unknown op")) {
			snprintf(reason_buf, sizeof(reason_buf), "the kvm: agent does not offer %s yet", op->str);
			a.reason = reason_buf;
		}
	}
	emit(out, id, a, &val);
}

/* One response line part: {"id","status","value"|"reason"}; frees the value. */
static void emit(jbuf *out, uint64_t id, answer a, jbuf *val)
{
	if (val->failed)
		a = failed("out of memory building the answer");
	jb_str(out, "{\"id\":");
	jb_u64(out, id);
	jb_str(out, ",\"status\":");
	jb_qstr(out, a.status);
	if (!strcmp(a.status, "ok")) {
		jb_str(out, ",\"value\":");
		jb_raw(out, val->p ? val->p : "null", val->p ? val->len : 4);
	} else {
		jb_str(out, ",\"reason\":");
		jb_qstr(out, a.reason);
	}
	jb_str(out, "}");
	free(val->p);
	*val = (jbuf){ 0 };
}

/* A request that is a guest-op VMX instruction: its id, the instruction and its vCPU. */
static struct vcpu *vmx_request(const jnode *req, struct vmx_insn *in, uint64_t *id)
{
	const jnode *op = json_get(req, "op"), *args = json_get(req, "args");
	if (kvm_fd < 0 || json_u64(json_get(req, "id"), id) || !op || op->type != 's' || strcmp(op->str, "guest-op"))
		return NULL;
	struct vcpu *v = find_vcpu(args);
	return v && vmx_insn_of(json_get(args, "op"), in) ? v : NULL;
}

/* ... whose L1 can run it in a script (checked once per request, before the script runs). */
static struct vcpu *script_request(const jnode *req, struct vmx_insn *in, uint64_t *id)
{
	struct vcpu *v = vmx_request(req, in, id);
	return v && !v->in_smm && !vmptrld_spins(v, in) ? v : NULL;
}

/*
 * Responds to the requests from r on and returns the next one. A run of VMX instructions for one
 * vCPU (the VMWRITEs that put a vmcs12 in place) becomes one script, one KVM_RUN instead of one
 * each, answered request by request as one at a time would be. Where the script stopped early
 * (an exception, an internal error), the stopping instruction is answered from it and the rest
 * go one at a time, as they would have.
 */
static const jnode *respond_some(jbuf *out, const jnode *r)
{
	struct vmx_insn in;
	uint64_t id;
	struct vcpu *v = NULL;
	size_t n = 0;
	const jnode *q = r;
	for (; q && n < SCRIPT_MAX; q = q->next, n++) {
		struct vcpu *w = script_request(q, &in, &id);
		/* VMX instructions cannot enter L2: whether L2 runs is the same for the whole script */
		if (!w || (v && w != v) || (!n && in_l2(w)))
			break;
		v = w;
		script_put(v, n, in.op, in.arg0, in.arg1);
		put64(script_entry(v, n) + MB_RFLAGS, ~0ull); /* not run yet */
	}
	if (n < 2 || strcmp(l1_ready(v).status, "ok")) {
		respond(out, r);
		return r->next;
	}
	int port;
	answer a = l1_request(v, OP_SCRIPT, n, 0, "a script of VMX instructions", &port);
	uint64_t exc = get64(v->mem + L1_MAILBOX + MB_EXCEPTION);
	q = r;
	for (size_t k = 0; k < n; k++, q = q->next) {
		jbuf val = { 0 };
		vmx_request(q, &in, &id); /* eligible when the script was built: only its id and instruction are needed */
		const uint8_t *e = script_entry(v, k);
		int ran = get64(e + MB_RFLAGS) != ~0ull;
		if (strcmp(a.status, "ok")) {
			emit(out, id, a, &val); /* the machine did not answer: every request of the run says so */
		} else if (ran) {
			emit(out, id, block_result(e, 0, in.op, in.what, &val), &val);
		} else if (port >= 0 && port != L1_PORT_READY) {
			emit(out, id, failed("a script of VMX instructions stopped at an unexpected port"), &val);
		} else if (exc || port < 0) {
			/* the instruction the script stopped at: its exception, or KVM's internal error */
			answer b = port < 0 ? l1_result(v, in.op, in.what, port, &val) : block_result(e, exc, in.op, in.what, &val);
			emit(out, id, b, &val);
			return q->next; /* the rest one at a time */
		} else {
			emit(out, id, failed("a script of VMX instructions ended before this instruction"), &val);
		}
		if (k + 1 < n)
			jb_str(out, ",");
	}
	return q;
}

static int b64val(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* {"deflate": base64 of a raw-deflated request line} (the `deflate` feature of our hello): the
 * inflated line, NUL-terminated, at most MAX_LINE bytes; NULL with *err set otherwise. */
static char *inflate_request(const jnode *d, size_t *len, const char **err)
{
	size_t n = 0;
	uint8_t *raw = malloc(d->len / 4 * 3 + 3);
	char *outp = malloc(MAX_LINE + 1);
	unsigned acc = 0;
	int bits = 0;
	if (!raw || !outp) {
		*err = "out of memory";
		goto fail;
	}
	for (size_t i = 0; i < d->len && d->str[i] != '='; i++) {
		int v = b64val((unsigned char)d->str[i]);
		if (v < 0) {
			*err = "bad base64";
			goto fail;
		}
		acc = acc << 6 | (unsigned)v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			raw[n++] = (uint8_t)(acc >> bits);
		}
	}
	z_stream z = { .next_in = raw, .avail_in = (uInt)n, .next_out = (Bytef *)outp, .avail_out = MAX_LINE };
	if (inflateInit2(&z, -15) != Z_OK) {
		*err = "inflateInit2";
		goto fail;
	}
	int r = inflate(&z, Z_FINISH);
	*len = MAX_LINE - z.avail_out;
	inflateEnd(&z);
	if (r != Z_STREAM_END) {
		*err = r == Z_BUF_ERROR ? "deflated line too long or truncated" : "bad deflate stream";
		goto fail;
	}
	free(raw);
	outp[*len] = 0;
	return outp;
fail:
	free(raw);
	free(outp);
	return NULL;
}

/* Answers at least this long go deflated to a runner that deflated its request (so it reads the
 * `deflate` framing): the serial line carries about 55 KB/s out of the machine, and a case's batch
 * of guest-operation results (4-14 KB of JSON) shrinks to a fraction. */
#define DEFLATE_ANSWER_FROM 1024

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* {"deflate":"<base64 of the raw-deflated line>"} for line[0..n) (without its newline); 0 when it
 * could not be made (the caller then sends the line as it is) */
static int deflate_answer(jbuf *out, const char *line, size_t n)
{
	z_stream z = { 0 };
	if (deflateInit2(&z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	uLong cap = deflateBound(&z, (uLong)n);
	uint8_t *raw = malloc(cap);
	int ok = 0;
	if (raw) {
		z.next_in = (Bytef *)line;
		z.avail_in = (uInt)n;
		z.next_out = raw;
		z.avail_out = (uInt)cap;
		ok = deflate(&z, Z_FINISH) == Z_STREAM_END;
	}
	size_t m = cap - z.avail_out;
	deflateEnd(&z);
	if (ok) {
		jb_str(out, "{\"deflate\":\"");
		for (size_t i = 0; i < m; i += 3) {
			unsigned v = (unsigned)raw[i] << 16 | (i + 1 < m ? (unsigned)raw[i + 1] << 8 : 0) | (i + 2 < m ? raw[i + 2] : 0);
			char q[4] = { b64chars[v >> 18 & 63], b64chars[v >> 12 & 63], i + 1 < m ? b64chars[v >> 6 & 63] : '=', i + 2 < m ? b64chars[v & 63] : '=' };
			jb_raw(out, q, 4);
		}
		jb_str(out, "\"}\n");
		ok = !out->failed;
	}
	free(raw);
	return ok;
}

static void handle_line_as(char *line, size_t len, int deflated_request);

static void handle_line(char *line, size_t len)
{
	handle_line_as(line, len, 0);
}

static void handle_line_as(char *line, size_t len, int deflated_request)
{
	const char *err;
	jbuf out = { 0 };
	jnode *req = json_parse(line, len, &err);
	if (!req) {
		/* the runner never sends a bad line: say so on stderr (the console), answer nothing */
		fprintf(stderr, "nvmx-agent: unreadable request (%s)\n", err);
		return;
	}
	jnode *deflated = json_get(req, "deflate");
	if (deflated && deflated->type == 's') {
		size_t inner_len;
		char *inner = inflate_request(deflated, &inner_len, &err);
		if (!inner) {
			fprintf(stderr, "nvmx-agent: unreadable deflated request (%s)\n", err);
			return;
		}
		handle_line_as(inner, inner_len, 1);
		free(inner);
		return;
	}
	jnode *batch = json_get(req, "batch");
	if (batch && batch->type == 'a') {
		jb_str(&out, "{\"batch\":[");
		for (const jnode *r = batch->child; r;) {
			r = respond_some(&out, r);
			if (r)
				jb_str(&out, ",");
		}
		jb_str(&out, "]}");
	} else {
		respond(&out, req);
	}
	jbuf small = { 0 };
	if (!out.failed && deflated_request && out.len >= DEFLATE_ANSWER_FROM && deflate_answer(&small, out.p, out.len)) {
		free(out.p);
		out = small;
	} else {
		free(small.p);
		jb_str(&out, "\n");
	}
	if (out.failed) {
		static const char oom[] = "{\"id\":0,\"status\":\"error\",\"reason\":\"agent out of memory\"}\n";
		write_all(oom, sizeof(oom) - 1);
	} else {
		write_all(out.p, out.len);
	}
	free(out.p);
}

static void read_cmdline(void)
{
	char buf[4096] = { 0 };
	int fd = open("/proc/cmdline", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = 0;
		close(fd);
	}
	for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n")) {
		if (!strncmp(t, "nvmx.profile=", 13))
			snprintf(profile, sizeof(profile), "%s", t + 13);
		if (!strcmp(t, "nvmx.entries=1"))
			entries_on = 1;
		if (!strncmp(t, "nvmx.vmcs12_revision=", 21))
			vmcs12_revision = (uint32_t)strtoul(t + 21, NULL, 0);
		if (!strncmp(t, "nvmx.kvm_intel=", 15)) {
			snprintf(kvm_intel_params, sizeof(kvm_intel_params), "%s", t + 15);
			for (char *c = kvm_intel_params; *c; c++)
				if (*c == ',')
					*c = ' ';
		}
	}
}

/* The VMX capability MSRs a fresh vCPU of this KVM reports (host-initiated reads), on the console:
 * what this kernel on this CPU offers L1, for comparing with the model's default set. */
static struct kvm_msr_entry default_vmx_msrs[18];
static int n_default_vmx_msrs;

static void log_vmx_msrs(void)
{
	int vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	int fd = vm < 0 ? -1 : ioctl(vm, KVM_CREATE_VCPU, 0);
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[18];
	} m = { .h = { .nmsrs = 18 } };
	for (unsigned i = 0; i < 18; i++)
		m.e[i].index = 0x480 + i;
	if (fd >= 0 && ioctl(fd, KVM_SET_CPUID2, supported_cpuid) == 0) {
		int n = ioctl(fd, KVM_GET_MSRS, &m);
		n_default_vmx_msrs = n < 0 ? 0 : n;
		memcpy(default_vmx_msrs, m.e, sizeof(default_vmx_msrs));
		fprintf(stderr, "nvmx-agent: vmx msrs");
		for (int i = 0; i < n; i++)
			fprintf(stderr, " 0x%x=0x%llx", m.e[i].index, (unsigned long long)m.e[i].data);
		fprintf(stderr, "\n");
	}
	if (fd >= 0)
		close(fd);
	if (vm >= 0)
		close(vm);
}

static void hello(void)
{
	jbuf b = { 0 };
	struct utsname u;
	uname(&u);
	snprintf(release, sizeof(release), "%s", u.release);
	jb_str(&b, "{\"type\":\"hello\",\"protocol\":\"nvmx-target/1\",\"name\":\"kvm\",\"features\":[\"deflate\"],\"version\":");
	jb_qstr(&b, release);
	if (profile[0]) {
		jb_str(&b, ",\"profile\":");
		jb_qstr(&b, profile);
	}
	if (kvm_fd >= 0) {
		jb_str(&b, ",\"unsupportedGuestOps\":{");
		jb_str(&b, "\"vmexit\":\"a real L2 exits only for what its code does, and a generated L2 state has no code the agent could choose a VM-exit reason with\",\"mtf\":");
		/* a pending MTF needs the monitor-trap-flag control, which KVM offers only where the CPU has it */
		uint64_t procbased = 0;
		for (int i = 0; i < n_default_vmx_msrs; i++)
			if (default_vmx_msrs[i].index == 0x48e)
				procbased = default_vmx_msrs[i].data;
		jb_str(&b, procbased >> 32 & (1u << 27) ? "\"the agent cannot make KVM leave an MTF VM-exit pending yet\""
		                                        : "\"KVM does not offer the monitor-trap-flag control on this CPU (IA32_VMX_TRUE_PROCBASED_CTLS allowed-1 bit 27 clear: Bochs's corei7_skylake_x has no MTF)\"");
		if (!entries_on)
			jb_str(&b, ",\"vmlaunch\":\"" ENTRIES_OFF "\",\"vmresume\":\"" ENTRIES_OFF "\",\"evmcs-entry\":\"" ENTRIES_OFF "\"");
		/* vmcs12-access goes through L1's VMREAD/VMWRITE (handle_vmwrite's rules apply); the VMX
		 * MSRs are what a fresh vCPU reports, so generators can stay inside what KVM accepts */
		jb_str(&b, "},\"groups\":[\"nested-state\",\"vmcs12-access\",\"msr-filter\"],\"vmcs12Access\":\"instruction\",\"vmxMsrs\":{");
		for (int i = 0; i < n_default_vmx_msrs; i++) {
			char k[32];
			snprintf(k, sizeof(k), "%s\"0x%x\":", i ? "," : "", default_vmx_msrs[i].index);
			jb_str(&b, k);
			jb_hex64(&b, default_vmx_msrs[i].data);
		}
		/* generated addresses stay in the guest memory, clear of the L1 guest's area and SMRAM */
		char mem[160];
		snprintf(mem, sizeof(mem), "},\"guestMemory\":{\"bytes\":\"0x%x\",\"reserved\":[[\"0x%x\",\"0x%x\"],[\"0x%x\",\"0x%x\"]]", GUEST_MEM, L1_AREA, L1_AREA_END, SMM_BASE, SMM_AREA_END);
		jb_str(&b, mem);
		jb_str(&b, "},\"unsupported\":{");
		jb_str(&b, "\"layout\":\"a layout descriptor is not observable in KVM (member names, the eVMCS); vmcs12.access.* check every encoded field's bytes on the real page against the profile's layout instead\","
			   "\"layout-revisions\":\"KVM knows one vmcs12 layout (its VMCS12_REVISION) and translates no other\","
			   "\"evmcs-sync\":\"KVM copies between eVMCS and vmcs12 only inside an enlightened VM-entry (copy_enlightened_to_vmcs12 under the page's clean mask) and on the next return to L1 (copy_vmcs12_to_enlightened), and GET copies the whole eVMCS again (clean mask 0), so neither copy can be observed alone; the enlightened entries of the nested-state properties run both\"");
		jb_str(&b, "}}\n");
	} else {
		jb_str(&b, ",\"groups\":[],\"unsupported\":{\"nested-state\":");
		jb_qstr(&b, kvm_problem);
		jb_str(&b, "}}\n");
	}
	write_all(b.p, b.len);
	free(b.p);
}

static void raw_serial(int fd)
{
	struct termios t;
	if (tcgetattr(fd, &t) < 0)
		return; /* a pipe, when run by hand */
	cfmakeraw(&t);
	cfsetispeed(&t, B115200);
	cfsetospeed(&t, B115200);
	t.c_cflag |= CLOCAL | CREAD;
	tcsetattr(fd, TCSANOW, &t);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		in_fd = out_fd = open(argv[1], O_RDWR | O_NOCTTY);
		if (in_fd < 0) {
			perror(argv[1]);
			return 2;
		}
		raw_serial(in_fd);
	}
	read_cmdline();
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART: KVM_RUN returns EINTR */
	sigaction(SIGALRM, &sa, NULL);
	nested_loaded = read_nested_param();
	if (nested_loaded < 0)
		ensure_nested(1); /* kvm_intel is ours to load, with nvmx.kvm_intel='s parameters; a failure stays in kvm_problem */
	else if (open_kvm() < 0 && !kvm_problem[0])
		snprintf(kvm_problem, sizeof(kvm_problem), "KVM unusable: %s", strerror(errno));
	if (kvm_fd >= 0) {
		log_vmx_msrs();
		resume_spares();
	}
	spawn_helper(spare_maker, NULL);
	hello();
	char *line = malloc(MAX_LINE + 1);
	size_t len = 0;
	int discarding = 0;
	if (!line)
		return 3;
	for (;;) {
		ssize_t n = read(in_fd, line + len, MAX_LINE - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		size_t start = 0, end = len + (size_t)n;
		for (size_t i = len; i < end; i++) {
			if (line[i] != '\n')
				continue;
			if (!discarding)
				handle_line(line + start, i - start);
			discarding = 0;
			start = i + 1;
		}
		memmove(line, line + start, end - start);
		len = end - start;
		if (len == MAX_LINE) {
			fprintf(stderr, "nvmx-agent: request line longer than %u bytes, discarded\n", MAX_LINE);
			discarding = 1;
			len = 0;
		}
	}
}
