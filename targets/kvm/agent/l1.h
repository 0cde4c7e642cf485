/*
 * nvmx-conformance kvm: agent (MIT): the L1 guest's memory map and mailbox, shared by l1.S and
 * agent.c. Guest-physical addresses below 0xe00000 belong to the properties (VMXON regions, VMCS
 * pages, eVMCS, link pages); the agent refuses to let a property write the ranges used here.
 */
#ifndef NVMX_L1_H
#define NVMX_L1_H

#define L1_AREA 0xe00000          /* page tables, GDT, IDT, TSS, mailbox, code, stack */
#define L1_AREA_END 0xf00000
#define L1_PML4 0xe00000
#define L1_PDPT 0xe01000
#define L1_PD 0xe02000            /* 2 MiB pages: guest-physical 0..1 GiB identity-mapped */
#define L1_GDT 0xe03000
#define L1_IDT 0xe04000
#define L1_MAILBOX 0xe05000
#define L1_TSS 0xe06000
#define L1_VP_ASSIST 0xe07000     /* the Hyper-V VP-assist page (set-vp-assist) */
#define L1_CODE 0xe10000
#define L1_SCRIPT 0xe40000        /* OP_SCRIPT entries, up to L1_AREA_END */
#define SCRIPT_ENTRY 64           /* bytes per entry: the mailbox layout below */
#define L1_STACK_TOP 0xe40000

#define SMM_BASE 0x30000          /* the default SMBASE: the handler runs at SMBASE + 0x8000 */
#define SMM_HANDLER 0x38000
#define SMM_AREA_END 0x40000

#define L1_PORT_READY 0x10        /* L1 waits for the next request */
#define L1_PORT_SMM 0x11          /* the SMM handler waits for RSM */

/* mailbox offsets (u64 each) */
#define MB_OP 0
#define MB_ARG0 8
#define MB_ARG1 16
#define MB_RFLAGS 24
#define MB_VALUE 32
#define MB_ERROR 40
#define MB_EXCEPTION 48           /* vector + 1, or 0 */

#define OP_NOP 0
#define OP_VMXON 1
#define OP_VMXOFF 2
#define OP_VMPTRLD 3
#define OP_VMCLEAR 4
#define OP_VMWRITE 5
#define OP_VMREAD 6
#define OP_RSM 7
#define OP_RDMSR 8
#define OP_SCRIPT 9               /* MB_ARG0 entries at L1_SCRIPT */
#define OP_VMLAUNCH 10
#define OP_VMRESUME 11

#endif
