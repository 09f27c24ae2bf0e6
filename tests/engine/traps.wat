;; A tiny module that traps in every way wasm2c code can, for the engine's own tests.
(module
  ;; The host's hook for thread tests: runs in the middle of a guest call (see "paused").
  (import "host" "pause" (func $pause (param i32) (result i32)))
  (memory (export "memory") 1 2)
  (table 2 funcref)
  (type $i2i (func (param i32) (result i32)))
  (func $id (type $i2i) (local.get 0))
  (elem (i32.const 0) $id $recurse)
  (func (export "ok") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func (export "unreachable") unreachable)
  (func (export "div_by_zero") (param i32) (result i32) (i32.div_s (i32.const 1) (local.get 0)))
  (func (export "int_overflow") (param i32) (result i32) (i32.div_s (i32.const 0x80000000) (local.get 0)))
  (func (export "invalid_conversion") (param f64) (result i32) (i32.trunc_f64_s (local.get 0)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store_offset") (param i32) (i32.store offset=0xfffffff0 (local.get 0) (i32.const 7)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  ;; Recursion through the table, so the C compiler cannot turn it into a loop.
  (func $recurse (export "recurse") (type $i2i)
    (i32.add (call_indirect (type $i2i) (i32.add (local.get 0) (i32.const 1)) (i32.const 1))
             (i32.const 1)))
  (func (export "call_indirect") (param i32) (result i32)
    (call_indirect (type $i2i) (i32.const 5) (local.get 0)))
  ;; Stores its argument at 16, calls the host (which may hold this thread there while
  ;; another thread traps), loads from the address the host returned (0, which holds 0; or
  ;; past the memory: a trap on this thread, after the other thread's) and returns that
  ;; plus the stored value plus 1.
  (func (export "paused") (param i32) (result i32)
    (i32.store (i32.const 16) (local.get 0))
    (i32.add (i32.load (call $pause (local.get 0)))
             (i32.add (i32.load (i32.const 16)) (i32.const 1))))
)
