//! skua: QuickJS's reference counts, moved inline.
//!
//! Every `Ctx` and `Value` clone or drop took and released a reference
//! through a call into C (`JS_DupContext`, `JS_FreeContext`,
//! `JS_DupValue`, `JS_FreeValue`): a few dozen calls for each property a
//! script reads from a Rust class. The QuickJS that rquickjs-sys 0.14.0
//! bundles keeps the count of a context and of every counted value in the
//! allocator's block header, an `i32` just before the first byte
//! (`js_rc(p)->ref_count`), so taking a reference is an increment here, and
//! releasing one a decrement unless it is the last, which still goes to C
//! to free. [`check`] proves the layout on each new context against the C
//! functions themselves; the crate pins rquickjs-sys to that release.

use crate::qjs;

/// Bytes from the start of a counted block back to its `ref_count`.
const REF_COUNT_BACK: usize = 4;

#[inline(always)]
unsafe fn count(p: *mut qjs::c_void) -> *mut i32 {
    p.cast::<u8>().sub(REF_COUNT_BACK).cast::<i32>()
}

#[inline(always)]
pub(crate) unsafe fn dup_context(ctx: *mut qjs::JSContext) {
    *count(ctx.cast()) += 1;
}

#[inline(always)]
pub(crate) unsafe fn free_context(ctx: *mut qjs::JSContext) {
    let c = count(ctx.cast());
    if *c > 1 {
        *c -= 1;
    } else {
        qjs::JS_FreeContext(ctx);
    }
}

#[inline(always)]
pub(crate) unsafe fn dup_value(v: qjs::JSValue) -> qjs::JSValue {
    if qjs::JS_VALUE_HAS_REF_COUNT(v) {
        *count(qjs::JS_VALUE_GET_PTR(v)) += 1;
    }
    v
}

#[inline(always)]
pub(crate) unsafe fn free_value(ctx: *mut qjs::JSContext, v: qjs::JSValue) {
    if qjs::JS_VALUE_HAS_REF_COUNT(v) {
        let c = count(qjs::JS_VALUE_GET_PTR(v));
        if *c > 1 {
            *c -= 1;
            return;
        }
        qjs::JS_FreeValue(ctx, v);
    }
}

/// Panics unless references to `ctx` and to a new object move the counts
/// this module reads exactly as QuickJS's own functions do.
pub(crate) unsafe fn check(ctx: *mut qjs::JSContext) {
    let c = count(ctx.cast());
    let before = *c;
    qjs::JS_DupContext(ctx);
    let taken = *c;
    qjs::JS_FreeContext(ctx);
    let obj = qjs::JS_NewObject(ctx);
    let ok_obj = if qjs::JS_VALUE_HAS_REF_COUNT(obj) {
        let o = count(qjs::JS_VALUE_GET_PTR(obj));
        let fresh = *o;
        qjs::JS_DupValue(ctx, obj);
        let dup = *o;
        qjs::JS_FreeValue(ctx, obj);
        let freed = *o;
        fresh == 1 && dup == 2 && freed == 1
    } else {
        false
    };
    qjs::JS_FreeValue(ctx, obj);
    assert!(
        before >= 1 && taken == before + 1 && *c == before && ok_obj,
        "QuickJS's reference counts are not where rquickjs-core (vendor/, src/rc.rs) reads them: \
         this build of rquickjs-sys is not the 0.14.0 it was patched for"
    );
}
