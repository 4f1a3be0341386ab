/* Multiboot 1 entry for the .mb.elf images: the header, then 32-bit protected-mode code
 * (EAX = 0x2BADB002, EBX = multiboot_info, paging off, IF = 0) that builds an identity map
 * of the first 4 GiB with 2 MiB pages, enables PAE, EFER.LME and paging, loads a 64-bit GDT
 * (0x08 code, 0x10 data, as vmrr's ELF64 loader) and jumps to _start in long mode with
 * RDI = RAM size from mem_upper (0 if the loader gave no memory information).
 * Everything it writes lives in .bootbss, outside the .bss that _start clears. */
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00000003       /* page-align modules, want memory information */

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .section .text.mb, "ax"
    .code32
    .globl mb_entry
mb_entry:
    cli
    cld
    movl $mb_stack_top, %esp
    movl %eax, mb_magic
    movl %ebx, mb_info

    /* PML4[0] -> PDPT; PDPT[0..3] -> PD0..PD3; PDn[i] = 2 MiB page. */
    movl $pml4, %edi
    xorl %eax, %eax
    movl $(6 * 4096 / 4), %ecx      /* pml4, pdpt and four PDs are contiguous */
    rep stosl
    movl $pdpt, %eax
    orl $0x3, %eax                  /* present, writable */
    movl %eax, pml4
    movl $pd, %eax
    orl $0x3, %eax
    movl $pdpt, %edi
    movl $4, %ecx
1:  movl %eax, (%edi)
    addl $4096, %eax
    addl $8, %edi
    loop 1b
    movl $pd, %edi
    movl $0x83, %eax                /* present, writable, 2 MiB page */
    xorl %edx, %edx                 /* high half of the physical address */
    movl $2048, %ecx
2:  movl %eax, (%edi)
    movl %edx, 4(%edi)
    addl $0x200000, %eax
    adcl $0, %edx
    addl $8, %edi
    loop 2b

    lgdt gdt64_ptr
    movl $pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax                 /* PAE */
    movl %eax, %cr4
    movl $0xC0000080, %ecx          /* EFER */
    rdmsr
    orl $0x100, %eax                /* LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80010001, %eax           /* PG | WP | PE */
    movl %eax, %cr0
    ljmp $0x08, $mb_long

    .code64
mb_long:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    xorl %eax, %eax
    movl %eax, %fs
    movl %eax, %gs
    xorl %edi, %edi
    cmpl $0x2BADB002, mb_magic
    jne 3f
    movl mb_info, %esi              /* zero-extends: the info block is below 4 GiB */
    testl $1, (%rsi)                /* flags bit 0: mem_lower/mem_upper valid */
    jz 3f
    movl 8(%rsi), %edi              /* mem_upper: KiB above 1 MiB */
    addq $1024, %rdi
    shlq $10, %rdi
3:  jmp _start

    .section .rodata
    .balign 8
gdt64:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00cf92000000ffff        /* 0x10: data, writable */
gdt64_end:
    .balign 4
gdt64_ptr:
    .word gdt64_end - gdt64 - 1
    .long gdt64

    .section .bootbss, "aw", @nobits
    .balign 4096
pml4:
    .skip 4096
pdpt:
    .skip 4096
pd:
    .skip 4 * 4096
mb_stack:
    .skip 4096
mb_stack_top:
mb_magic:
    .skip 4
mb_info:
    .skip 4
