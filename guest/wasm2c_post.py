#!/usr/bin/python3.11
"""Rewrites the C that wasm2c 1.0.32 generated for the guest, so that gcc makes faster code of it.

Usage: wasm2c_post.py IN.c OUT.c [FACTS.h]

wasm2c addresses linear memory as `i32_load(&instance->w2c_memory, addr)`, which reads the
memory's base pointer out of the instance at every access. Every store into guest memory is a
byte store as far as C is concerned, so it may alias that base pointer, and gcc reloads the
base after each store: pointer-chasing interpreter code pays two dependent loads per access.

brig's memories never move (wasm-rt.h: `data` is fixed for the memory's lifetime, growth only
changes page protection), so each function reads the base once, into a local whose address
is never taken, and the accesses go through it:

    static u32 w2c_f1(Z_python_instance_t* instance, u32 w2c_p0) {
      u8* const brig_mb = instance->w2c_memory.data;
      ... brig_i32_load(brig_mb, (u64)(w2c_p0) + 8u) ...

The loads also drop wasm2c's `__asm__("" :: "r"(result))`, which forces every loaded value
through a register (no load folded into an arithmetic instruction) and, being an implicitly
volatile asm, pins the order of all loads in a function. It exists so that a load whose value
is unused still faults when out of bounds. Without it gcc may delete such a dead load: the
guest then does not trap where the wasm specification says it should, but nothing outside
the guest's reservation is ever read or written (every address is still base + 32-bit
address + 32-bit offset, inside the 8 GiB reservation), so isolation is unchanged.

FACTS.h receives what the engine needs to rebuild the function table from the module itself,
without instantiating it (src/engine/python_instance.c, module_table): the table's size, where
the one element segment goes, the memory's initial and maximum pages and the stack pointer's
initial value. guest/compile-guest-c.sh makes the element segment and the function type ids
visible to the engine under the names brig_w2c_elem_segment and brig_w2c_func_types.

The transformation is textual and checked: the script fails (and the build with it) if the
generated code does not look as expected, e.g. after a wabt upgrade.
"""
import re
import sys

HELPERS = r"""
/* brig (guest/wasm2c_post.py): memory accesses through a base pointer cached per function. */
#define BRIG_DEFINE_LOAD(name, t1, t2, t3)                        \
  static inline t3 brig_##name(u8* mb, u64 addr) {                \
    t1 result;                                                    \
    wasm_rt_memcpy(&result, mb + addr, sizeof(t1));               \
    return (t3)(t2)result;                                        \
  }
#define BRIG_DEFINE_STORE(name, t1, t2)                           \
  static inline void brig_##name(u8* mb, u64 addr, t2 value) {    \
    t1 wrapped = (t1)value;                                       \
    wasm_rt_memcpy(mb + addr, &wrapped, sizeof(t1));              \
  }
BRIG_DEFINE_LOAD(i32_load, u32, u32, u32)
BRIG_DEFINE_LOAD(i64_load, u64, u64, u64)
BRIG_DEFINE_LOAD(f32_load, f32, f32, f32)
BRIG_DEFINE_LOAD(f64_load, f64, f64, f64)
BRIG_DEFINE_LOAD(i32_load8_s, s8, s32, u32)
BRIG_DEFINE_LOAD(i64_load8_s, s8, s64, u64)
BRIG_DEFINE_LOAD(i32_load8_u, u8, u32, u32)
BRIG_DEFINE_LOAD(i64_load8_u, u8, u64, u64)
BRIG_DEFINE_LOAD(i32_load16_s, s16, s32, u32)
BRIG_DEFINE_LOAD(i64_load16_s, s16, s64, u64)
BRIG_DEFINE_LOAD(i32_load16_u, u16, u32, u32)
BRIG_DEFINE_LOAD(i64_load16_u, u16, u64, u64)
BRIG_DEFINE_LOAD(i64_load32_s, s32, s64, u64)
BRIG_DEFINE_LOAD(i64_load32_u, u32, u64, u64)
BRIG_DEFINE_STORE(i32_store, u32, u32)
BRIG_DEFINE_STORE(i64_store, u64, u64)
BRIG_DEFINE_STORE(f32_store, f32, f32)
BRIG_DEFINE_STORE(f64_store, f64, f64)
BRIG_DEFINE_STORE(i32_store8, u8, u32)
BRIG_DEFINE_STORE(i32_store16, u16, u32)
BRIG_DEFINE_STORE(i64_store8, u8, u64)
BRIG_DEFINE_STORE(i64_store16, u16, u64)
BRIG_DEFINE_STORE(i64_store32, u32, u64)
"""

ACCESS = re.compile(r"\b((?:i32|i64|f32|f64)_(?:load|store)\w*)\(&instance->w2c_memory, ")
# A function of the module (w2c_*: not the instantiation code, which runs before the memory
# exists): takes the instance first, body on the following lines.
FUNC_DEF = re.compile(r"^static \w+ w2c_\w+\(Z_python_instance_t\* instance\b[^;{]*\) \{$",
                      re.M)
ANCHOR = "DEFINE_STORE(i64_store32, u32, u64)\n"


def fail(msg):
    sys.exit("wasm2c_post.py: " + msg + " (has wasm2c's output changed?)")


TABLE_WRITES = re.compile(r"\b(funcref_table_(set|fill|copy)|wasm_rt_grow_funcref_table|externref_table_\w+)\(&instance")
TABLE_SETUP = ("wasm_rt_allocate_funcref_table(&instance->w2c_T0", "funcref_table_init(&instance->w2c_T0",
               "wasm_rt_free_funcref_table(&instance->w2c_T0")


def check_tables_are_constant(text):
    """Instances reused for new sandboxes keep their function table as it is
    (src/engine/python_instance.c keep_memory): that is only right while the guest has no
    instruction that changes a table after instantiation."""
    if TABLE_WRITES.search(text):
        fail("the guest changes a table at run time (table.set/grow/fill/copy): reused "
             "instances would keep a changed table; see keep_memory in python_instance.c")
    for line in text.splitlines():
        if "w2c_T0" in line and "CALL_INDIRECT" not in line and not any(s in line for s in TABLE_SETUP):
            fail("unexpected use of the function table: " + line.strip()[:120])
    if text.count("funcref_table_init(&instance->w2c_T0") != 1:
        fail("the function table is initialised more than once (table.init at run time?)")


ENTRY_INSTANCE = re.compile(r"instance->w2c_T0\.data\[(\w+)\]\.module_instance")
ELEM_ENTRY = re.compile(r"  \{\d+, \(wasm_rt_function_ptr_t\)&w2c_\w+, 0\},")


def call_with_own_instance(text):
    """An indirect call runs its callee with the caller's own instance, not the instance
    stored in the table entry, so that every instance of an image can share one read-only
    table (src/engine/python_instance.c share_table). Right only while every table entry is
    a function of this module (offset 0 from the instance): checked here, since an imported
    function would need its own instance."""
    start = text.find("elem_segment_exprs_w2c_e0[] = {\n")
    if start < 0 or text.count("elem_segment_exprs_") != 2:
        fail("expected exactly one element segment")
    block = text[start:text.index("\n};", start)].split("\n")[1:]
    if len(block) < 1000 or not all(ELEM_ENTRY.fullmatch(line) for line in block):
        fail("a table entry is not a function of this module: the table cannot be shared")
    text, calls = ENTRY_INSTANCE.subn("instance", text)
    if calls < 100:
        fail("only %d indirect calls rewritten" % calls)
    if ".module_instance" in text:
        fail("the table's instance pointer is still read somewhere")
    return text


ELEM_STRUCT = """typedef struct {
  uint32_t func_type_index;
  wasm_rt_function_ptr_t func;
  size_t module_offset;
} wasm_elem_segment_expr_t;
"""
INIT_TABLES = re.compile(
    r"static void init_tables\(Z_python_instance_t\* instance\) \{\n"
    r"  wasm_rt_allocate_funcref_table\(&instance->w2c_T0, (\d+), (\d+)\);\n"
    r"  funcref_table_init\(&instance->w2c_T0, elem_segment_exprs_w2c_e0, (\d+), (\d+)u, 0, (\d+), instance, func_types\);\n"
    r"\}\n")
INIT_MEMORY = re.compile(r"static void init_memories\(Z_python_instance_t\* instance\) \{\n"
                         r"  wasm_rt_allocate_memory\(&instance->w2c_memory, (\d+), (\d+)\);\n")
INIT_GLOBALS = re.compile(r"static void init_globals\(Z_python_instance_t\* instance\) \{\n"
                          r"  instance->w2c_g0 = (\d+)u;\n\}\n")
FUNC_TYPES = re.compile(r"^static u32 func_types\[(\d+)\];$", re.M)


def module_facts(text):
    """The header the engine rebuilds the module's function table from (see the top)."""
    if text.count(ELEM_STRUCT) != 1:
        fail("the element segment's entries are not laid out as src/engine/python_instance.c expects")
    table = INIT_TABLES.search(text)
    memory = INIT_MEMORY.search(text)
    globals_ = INIT_GLOBALS.search(text)
    types = FUNC_TYPES.findall(text)
    if not table or not memory or not globals_ or len(types) != 1:
        fail("init_tables, init_memories, init_globals or func_types not as expected")
    size, max_size, elems, dest, count = (int(g) for g in table.groups())
    block = text[text.index("elem_segment_exprs_w2c_e0[] = {\n"):]
    block = block[:block.index("\n};")].split("\n")[1:]
    if size != max_size or elems != count or len(block) != count or dest + count > size:
        fail("the element segment does not fill the table as expected")
    return """/* Generated by guest/wasm2c_post.py from wasm2c's output: facts of the guest module. */
/* The function table: its size (which never changes); the element segment fills entries
 * [DEST, DEST + COUNT) of it, and brig_w2c_func_types has FUNC_TYPE_COUNT entries. */
#define BRIG_W2C_TABLE_SIZE %du
#define BRIG_W2C_ELEM_DEST %du
#define BRIG_W2C_ELEM_COUNT %du
#define BRIG_W2C_FUNC_TYPE_COUNT %du
/* The linear memory's initial and maximum size in 64 KiB pages. */
#define BRIG_W2C_MEMORY_PAGES %du
#define BRIG_W2C_MEMORY_MAX_PAGES %du
/* The stack pointer (global 0) as instantiated: its value whenever no call runs. */
#define BRIG_W2C_G0_INITIAL %du
""" % (size, dest, count, int(types[0]), int(memory.group(1)), int(memory.group(2)), int(globals_.group(1)))


def main():
    src, dst = sys.argv[1], sys.argv[2]
    text = open(src, encoding="utf-8").read()
    if text.count(ANCHOR) != 1:
        fail("load/store definitions not found")
    end = text.index(ANCHOR) + len(ANCHOR)
    text = text[:end] + HELPERS + text[end:]

    text, accesses = ACCESS.subn(r"brig_\1(brig_mb, ", text)
    if accesses < 1000:
        fail("only %d memory accesses rewritten" % accesses)
    if "&instance->w2c_memory, (u64)" in text:
        fail("a memory access was left unrewritten")

    check_tables_are_constant(text)
    text = call_with_own_instance(text)
    facts = module_facts(text)

    funcs = 0

    def add_base(m):
        nonlocal funcs
        funcs += 1
        return m.group(0) + "\n  u8* const brig_mb = instance->w2c_memory.data; (void)brig_mb;"

    text = FUNC_DEF.sub(add_base, text)
    if funcs < 1000:
        fail("only %d functions found" % funcs)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(text)
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w", encoding="utf-8") as f:
            f.write(facts)
    print("wasm2c_post.py: %d accesses in %d functions" % (accesses, funcs))


if __name__ == "__main__":
    main()
