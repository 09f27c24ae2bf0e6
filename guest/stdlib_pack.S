/* Embeds the stdlib pack (see pack_stdlib.py) in the binary: brig needs no files beside it. */
        .section .rodata
        .balign 16
        .global brig_stdlib_pack_begin
brig_stdlib_pack_begin:
        .incbin BRIG_STDLIB_PACK
        .global brig_stdlib_pack_end
brig_stdlib_pack_end:
        .section .note.GNU-stack,"",@progbits
