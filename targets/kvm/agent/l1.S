/*
 * nvmx-conformance kvm: agent (MIT): the L1 guest. It runs in 64-bit mode inside a KVM VM of the
 * emulated machine and executes one VMX instruction per request, so that the kernel's own
 * handle_vmxon/handle_vmptrld/handle_vmwrite/... answer. These bytes are copied into guest memory;
 * they never run on the host.
 *
 * The agent and this code share a mailbox at a fixed guest-physical address (l1.h). The loop:
 * `out` to port L1_PORT_READY (an exit to the agent, which fills the mailbox and re-enters), run
 * the requested instruction, store RFLAGS (and for VMfailValid the VM-instruction error, read with
 * VMREAD), loop. A script (OP_SCRIPT) runs many such requests in one KVM_RUN. An exception (a #UD from a VMX instruction KVM refuses) lands in a stub of the
 * IDT, which stores the vector and goes back to the loop.
 */
#include "l1.h"

#define MB(off) (L1_MAILBOX + (off))

	.section .rodata.l1, "a"
	.code64
	.globl l1_start, l1_end, l1_vectors, l1_entry
	.balign 16
l1_start:
l1_entry:
	movq	$L1_STACK_TOP, %rsp
l1_loop:
	outb	%al, $L1_PORT_READY
	movq	$0, MB(MB_EXCEPTION)
	movq	MB(MB_OP), %rax
	cmpq	$OP_SCRIPT, %rax
	je	l1_script
	movq	MB(MB_ARG0), %rdx
	movq	MB(MB_ARG1), %rbx
	movq	$L1_MAILBOX, %rdi
	call	l1_exec
	jmp	l1_loop

/* OP_SCRIPT: MB_ARG0 entries at L1_SCRIPT, each laid out as the mailbox (op, arg0, arg1, then the
 * results), run in one KVM_RUN: only the VMX instructions exit, to KVM, not to the agent. */
l1_script:
	movq	MB(MB_ARG0), %rcx
	movq	$L1_SCRIPT, %rdi
1:	testq	%rcx, %rcx
	jz	l1_loop
	movq	MB_OP(%rdi), %rax
	movq	MB_ARG0(%rdi), %rdx
	movq	MB_ARG1(%rdi), %rbx
	pushq	%rcx
	pushq	%rdi
	call	l1_exec
	popq	%rdi
	popq	%rcx
	addq	$SCRIPT_ENTRY, %rdi
	decq	%rcx
	jmp	1b

/* One instruction: op in %rax, arg0 in %rdx, arg1 in %rbx, results into the block at %rdi. */
l1_exec:
	movq	$0, MB_ERROR(%rdi)
	movq	$0, MB_VALUE(%rdi)
	cmpq	$OP_VMXON, %rax
	je	1f
	cmpq	$OP_VMXOFF, %rax
	je	2f
	cmpq	$OP_VMPTRLD, %rax
	je	3f
	cmpq	$OP_VMCLEAR, %rax
	je	4f
	cmpq	$OP_VMWRITE, %rax
	je	5f
	cmpq	$OP_VMREAD, %rax
	je	6f
	cmpq	$OP_RSM, %rax
	je	7f
	cmpq	$OP_RDMSR, %rax
	je	8f
	cmpq	$OP_VMLAUNCH, %rax
	je	9f
	cmpq	$OP_VMRESUME, %rax
	je	10f
	/* OP_NOP (and anything else): only a round trip through KVM_RUN */
	pushfq
	popq	MB_RFLAGS(%rdi)
	ret
1:	vmxon	MB_ARG0(%rdi)
	jmp	l1_done
2:	vmxoff
	jmp	l1_done
3:	vmptrld	MB_ARG0(%rdi)
	jmp	l1_done
4:	vmclear	MB_ARG0(%rdi)
	jmp	l1_done
5:	vmwrite	%rbx, %rdx		/* field in %rdx (arg0), value in %rbx (arg1) */
	jmp	l1_done
6:	vmread	%rdx, %rbx		/* field in %rdx (arg0), value to %rbx */
	pushfq
	popq	MB_RFLAGS(%rdi)
	movq	%rbx, MB_VALUE(%rdi)
	jmp	l1_error
7:	rsm				/* outside SMM: #UD, as the model says */
	jmp	l1_done
8:	movq	%rdx, %rcx		/* RDMSR of the index in arg0: a #GP lands in the vector stubs */
	rdmsr
	shlq	$32, %rdx
	movl	%eax, %eax
	orq	%rdx, %rax
	movq	%rax, MB_VALUE(%rdi)
	movq	$0, MB_RFLAGS(%rdi)
	ret
9:	testq	%rsp, %rsp		/* ZF and CF clear: only the instruction's own VMfail sets them */
	vmlaunch			/* falls through only on VMfail: an entry leaves L1 (see agent.c, l1_entry) */
	jmp	l1_done
10:	testq	%rsp, %rsp
	vmresume
	jmp	l1_done
l1_done:
	pushfq
	popq	MB_RFLAGS(%rdi)
l1_error:
	/* VMfailValid (ZF): the VM-instruction error field of the current VMCS says why */
	testq	$0x40, MB_RFLAGS(%rdi)
	jz	1f
	movq	$0x4400, %rdx
	vmread	%rdx, %rbx
	movq	%rbx, MB_ERROR(%rdi)
1:	ret

	/* one stub per vector, 16 bytes apart: the agent's IDT points at them */
	.balign 16
l1_vectors:
	.set	vec, 0
	.rept	32
	.balign	16
	pushq	$vec
	jmp	l1_exception
	.set	vec, vec + 1
	.endr
l1_exception:
	popq	%rax
	incq	%rax
	movq	%rax, MB(MB_EXCEPTION)
	movq	$L1_STACK_TOP, %rsp
	jmp	l1_loop
l1_end:

/*
 * The SMM handler, at SMBASE + 0x8000 (0x38000): SMM starts in a real-mode-like state with 4 GiB
 * segment limits. It reports that SMM was entered and waits there until the agent asks for RSM.
 */
	.globl	smm_start, smm_end
	.code16
smm_start:
	outb	%al, $L1_PORT_SMM
	addr32 movl	MB(MB_OP), %eax
	cmpl	$OP_RSM, %eax
	jne	smm_start
	addr32 movl	$OP_NOP, MB(MB_OP)	/* back in L1, the loop must not run RSM again */
	rsm
smm_end:

	.section .note.GNU-stack, "", @progbits
