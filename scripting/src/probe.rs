//! What QuickJS's API does not tell about an object, read from its memory:
//! whether anything but the caller holds it (its reference count), whether
//! it is weakly held (a `WeakMap`/`WeakSet` key, a `WeakRef` target),
//! whether it has own properties, is extensible and keeps its prototype.
//!
//! The runtime asks this after the hooks have seen an item, to reuse the
//! item's lazy objects for the next one when no script kept them and none
//! changed them (see `item_js`): making and freeing them is most of what an
//! item costs a short hook.
//!
//! The layouts below are those of the QuickJS that rquickjs-sys 0.14.0
//! bundles (quickjs-ng with the reference count in the allocator's block
//! header) on 64-bit targets. [`Probe::new`] checks them against the live
//! runtime (reference counts that move with clones, a property, a weak
//! reference, `preventExtensions`, `setPrototypeOf`, the class id) and
//! turns itself off on any mismatch, so another QuickJS build only loses
//! the reuse, never correctness.
// The one module of this crate with unsafe code (see Cargo.toml).
#![allow(unsafe_code)]

use rquickjs::{qjs, Ctx, Function, Object, Value};

/// Byte offsets (64-bit).
mod at {
    /// `JSMallocBlockHeader.ref_count`, before the object's first byte.
    pub const REF_COUNT: isize = -4;
    /// `JSObject`: the flags byte (bit 1 = `extensible`), `class_id`,
    /// `shape`, `first_weak_ref`.
    pub const FLAGS: usize = 16;
    pub const CLASS_ID: usize = 18;
    pub const SHAPE: usize = 24;
    /// `JSObject.prop`: the values, one 16-byte `JSValue` each (the
    /// pointer, then the tag), in the order of the shape's entries.
    pub const PROP: usize = 32;
    pub const FIRST_WEAK_REF: usize = 40;
    /// `JSShape`: `prop_hash_mask`, `prop_count` (deleted properties
    /// included), `proto`, then the hash table (`prop_hash_mask + 1` u32s)
    /// and the entries: 8 bytes each, the flags in the top 6 bits of the
    /// first u32, the atom in the second (`JS_ATOM_NULL` once deleted).
    pub const PROP_HASH_MASK: usize = 24;
    pub const PROP_COUNT: usize = 32;
    pub const PROTO: usize = 48;
    pub const HASH_TABLE: usize = 56;
    pub const ENTRY: usize = 8;
    pub const VALUE: usize = 16;
}

/// An own property the runtime itself defined on a lazy object (a value
/// it made plain, so QuickJS reads it without calling the class), as it
/// must still be: its name's atom id and the object it holds (its
/// address), writable, enumerable and configurable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Own {
    pub(crate) atom: u32,
    pub(crate) value: usize,
}

/// `JS_PROP_C_W_E` of a plain data property, as its entry's 6 flag bits.
const PLAIN_FLAGS: u32 = 0b111;

/// Whether this runtime's objects can be read as laid out in [`at`].
#[derive(Clone, Copy)]
pub(crate) struct Probe {
    on: bool,
}

/// What one object looks like.
#[derive(Debug, PartialEq, Eq)]
struct Facts {
    ref_count: i32,
    class_id: u32,
    weakly_held: bool,
    own_properties: i32,
    extensible: bool,
    proto: usize,
}

/// The address of the object `v` holds, if it holds one.
pub(crate) fn addr(v: &Value<'_>) -> Option<usize> {
    ptr_of(v).map(|p| p as usize)
}

fn ptr_of(v: &Value<'_>) -> Option<*const u8> {
    let raw = v.as_raw();
    // SAFETY: reading the tag and pointer of a live value's bits.
    let (tag, ptr) = unsafe { (qjs::JS_VALUE_GET_TAG(raw), qjs::JS_VALUE_GET_PTR(raw)) };
    (tag == qjs::JS_TAG_OBJECT && !ptr.is_null()).then_some(ptr as *const u8)
}

/// Reads an object's facts. Only called once [`Probe::new`] has checked
/// the layout on this runtime, or by that check itself on objects it made.
fn facts(v: &Value<'_>) -> Option<Facts> {
    if !cfg!(target_pointer_width = "64") {
        return None;
    }
    let p = ptr_of(v)?;
    // SAFETY: `p` is a live `JSObject` (the value holds a reference). Every
    // read is inside the object, its allocator header (8 bytes before it)
    // or its shape (which a live object always has), at the offsets of
    // `at`; reads are unaligned-safe and copy plain integers and pointers.
    unsafe {
        let ref_count = p.offset(at::REF_COUNT).cast::<i32>().read_unaligned();
        let flags = p.add(at::FLAGS).read();
        let class_id = p.add(at::CLASS_ID).cast::<u16>().read_unaligned();
        let shape = p.add(at::SHAPE).cast::<*const u8>().read_unaligned();
        let weak = p.add(at::FIRST_WEAK_REF).cast::<*const u8>().read_unaligned();
        if shape.is_null() {
            return None;
        }
        let own_properties = shape.add(at::PROP_COUNT).cast::<i32>().read_unaligned();
        let proto = shape.add(at::PROTO).cast::<usize>().read_unaligned();
        Some(Facts {
            ref_count,
            class_id: u32::from(class_id),
            weakly_held: !weak.is_null(),
            own_properties,
            extensible: flags & 0b10 != 0,
            proto,
        })
    }
}

/// Own property `i` of object `p` (below its shape's `prop_count`): its
/// name's atom id, its flags and, for a data property holding an object,
/// that object's address.
///
/// # Safety
/// `p` is a live object whose layout [`Probe::new`] has checked, `i` is
/// below its shape's `prop_count`.
unsafe fn own_property(p: *const u8, i: usize) -> (u32, u32, Option<usize>) {
    // SAFETY: the caller's (see above).
    unsafe {
        let shape = p.add(at::SHAPE).cast::<*const u8>().read_unaligned();
        let mask = shape.add(at::PROP_HASH_MASK).cast::<u32>().read_unaligned() as usize;
        let entry = shape.add(at::HASH_TABLE + 4 * (mask + 1) + at::ENTRY * i);
        let flags = entry.cast::<u32>().read_unaligned() >> 26;
        let atom = entry.add(4).cast::<u32>().read_unaligned();
        let values = p.add(at::PROP).cast::<*const u8>().read_unaligned();
        let value = values.add(at::VALUE * i);
        let tag = value.add(8).cast::<i64>().read_unaligned();
        let object =
            (tag == i64::from(qjs::JS_TAG_OBJECT)).then(|| value.cast::<usize>().read_unaligned());
        (atom, flags, object)
    }
}

/// Whether object `p`'s own properties are exactly `own`, in that order,
/// past the entries of deleted ones (which the runtime leaves when it
/// takes a plain value back; QuickJS compacts them now and then).
///
/// # Safety
/// As [`own_property`]; `count` is `p`'s shape's `prop_count`.
unsafe fn owns_exactly(p: *const u8, count: i32, own: &[Own]) -> bool {
    let Ok(count) = usize::try_from(count) else { return false };
    if count != own.len() {
        // SAFETY: the caller's.
        return unsafe { owns_past_deleted(p, count, own) };
    }
    // SAFETY: the caller's, and `i` below `count`.
    own.iter()
        .enumerate()
        .all(|(i, o)| unsafe { own_property(p, i) } == (o.atom, PLAIN_FLAGS, Some(o.value)))
}

/// [`owns_exactly`] once entries were deleted (there are more than `own`).
///
/// # Safety
/// As [`owns_exactly`].
#[inline(never)]
unsafe fn owns_past_deleted(p: *const u8, count: usize, own: &[Own]) -> bool {
    let mut want = own.iter();
    let mut next = want.next();
    for i in 0..count {
        // SAFETY: the caller's, and `i` below `count`.
        let (atom, flags, value) = unsafe { own_property(p, i) };
        if atom == qjs::JS_ATOM_NULL {
            continue;
        }
        match next {
            Some(o) if (atom, flags, value) == (o.atom, PLAIN_FLAGS, Some(o.value)) => {
                next = want.next()
            }
            _ => return false,
        }
    }
    next.is_none()
}

/// Defines `name` on `o` holding `v` as the runtime defines the values it
/// makes plain, for [`Probe::check`].
fn define_plain<'js>(o: &Object<'js>, name: &str, v: &Object<'js>) -> rquickjs::Result<Own> {
    let atom = rquickjs::Atom::from_str(o.ctx().clone(), name)?;
    o.prop(
        atom.clone(),
        rquickjs::object::Property::from(v.clone()).writable().enumerable().configurable(),
    )?;
    Ok(Own { atom: crate::js::atom_id(&atom), value: addr(v.as_value()).unwrap_or(0) })
}

impl Probe {
    /// Checks the layout on `ctx`'s runtime; off if anything disagrees.
    pub(crate) fn new(ctx: &Ctx<'_>) -> Probe {
        Probe { on: Self::check(ctx).unwrap_or(false) }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.on
    }

    fn check(ctx: &Ctx<'_>) -> rquickjs::Result<bool> {
        let proto = Object::new(ctx.clone())?;
        let fresh = || -> rquickjs::Result<Object<'_>> {
            let o = Object::new(ctx.clone())?;
            o.set_prototype(Some(&proto))?;
            Ok(o)
        };
        let proto_ptr = addr(proto.as_value());
        let object: Object = ctx.globals().get("Object")?;
        let o = fresh()?;
        // SAFETY: reading the class id through the public API.
        let class_id = unsafe { qjs::JS_GetClassID(o.as_value().as_raw()) };
        let base = Facts {
            ref_count: 1,
            class_id,
            weakly_held: false,
            own_properties: 0,
            extensible: true,
            proto: proto_ptr.unwrap_or(0),
        };
        if facts(o.as_value()).as_ref() != Some(&base)
            || !untouched_facts(o.as_value(), &proto, 1, &[])
        {
            return Ok(false);
        }
        // A second holder.
        let copy = o.clone();
        let held = facts(o.as_value()).is_some_and(|f| f.ref_count == 2);
        drop(copy);
        let released = facts(o.as_value()).is_some_and(|f| f.ref_count == 1);
        // An own property, then a second one defined as the runtime
        // defines the values it makes plain: each read back where
        // `own_property` looks, flags, name and value.
        o.set("x", 1)?;
        let property = facts(o.as_value()).is_some_and(|f| f.own_properties == 1);
        let p = fresh()?;
        let (a, b) = (Object::new(ctx.clone())?, Object::new(ctx.clone())?);
        let own = [define_plain(&p, "probeA", &a)?, define_plain(&p, "probeB", &b)?];
        let plain_read = facts(p.as_value()).is_some_and(|f| f.own_properties == 2)
            // SAFETY: `p` is live and has two own properties; the reads are
            // what this check is for, and only plain integers are copied.
            && unsafe { ptr_of(p.as_value()).is_some_and(|q| owns_exactly(q, 2, &own)) };
        // A property made read-only no longer counts as plain.
        object.get::<_, Function>("defineProperty")?.call::<_, ()>((p.clone(), "probeA", {
            let d = Object::new(ctx.clone())?;
            d.set("writable", false)?;
            d
        }))?;
        // SAFETY: as above.
        let reconfigured =
            unsafe { ptr_of(p.as_value()).is_some_and(|q| !owns_exactly(q, 2, &own)) };
        // One deleted before another is skipped.
        let d = fresh()?;
        define_plain(&d, "probeA", &a)?;
        let own_d = [define_plain(&d, "probeB", &b)?];
        d.remove("probeA")?;
        // SAFETY: as above (two entries, one deleted).
        let deleted = facts(d.as_value()).is_some_and(|f| f.own_properties == 2)
            && unsafe {
                ptr_of(d.as_value())
                    .is_some_and(|r| owns_exactly(r, 2, &own_d) && !owns_exactly(r, 2, &own))
            };
        // Nor one holding another value.
        let q = fresh()?;
        let own_q = [define_plain(&q, "probeB", &b)?];
        // SAFETY: as above (one own property).
        let held_b = unsafe { ptr_of(q.as_value()).is_some_and(|r| owns_exactly(r, 1, &own_q)) };
        q.set("probeB", a.clone())?;
        // SAFETY: as above.
        let replaced = unsafe { ptr_of(q.as_value()).is_some_and(|r| !owns_exactly(r, 1, &own_q)) };
        // A weak holder, a sealed object, another prototype: each through
        // the global constructors scripts use.
        let weak_map: rquickjs::Constructor = ctx.globals().get("WeakMap")?;
        let map: Object = weak_map.construct(())?;
        let w = fresh()?;
        map.get::<_, Function>("set")?.call::<_, ()>((
            rquickjs::function::This(map.clone()),
            w.clone(),
            1,
        ))?;
        let weak = facts(w.as_value()).is_some_and(|f| f.weakly_held && f.ref_count == 1);
        let s = fresh()?;
        object.get::<_, Function>("preventExtensions")?.call::<_, ()>((s.clone(),))?;
        let sealed = facts(s.as_value()).is_some_and(|f| !f.extensible && f.ref_count == 1);
        let r = fresh()?;
        r.set_prototype(Some(&Object::new(ctx.clone())?))?;
        let reparented =
            facts(r.as_value()).is_some_and(|f| f.proto != base.proto && f.own_properties == 0);
        Ok(held
            && released
            && property
            && plain_read
            && reconfigured
            && deleted
            && held_b
            && replaced
            && weak
            && sealed
            && reparented)
    }

    /// Whether the caller's reference to `v` is its only one, and no script
    /// changed it: no weak holder, no own property, still extensible, still
    /// on `proto`. False whenever the probe is off.
    #[inline]
    pub(crate) fn untouched(&self, v: &Value<'_>, proto: &Object<'_>) -> bool {
        self.untouched_with(v, proto, 1, &[])
    }

    /// [`Probe::untouched`] for an object the runtime also holds in
    /// `holders - 1` properties of its own making, and whose own
    /// properties are exactly `own`, as the runtime defined them.
    #[inline]
    pub(crate) fn untouched_with(
        &self,
        v: &Value<'_>,
        proto: &Object<'_>,
        holders: i32,
        own: &[Own],
    ) -> bool {
        self.on && untouched_facts(v, proto, holders, own)
    }
}

fn untouched_facts(v: &Value<'_>, proto: &Object<'_>, holders: i32, own: &[Own]) -> bool {
    let Some(f) = facts(v) else { return false };
    let kept = f.ref_count == holders
        && !f.weakly_held
        && f.extensible
        && Some(f.proto) == addr(proto.as_value());
    kept && if f.own_properties == 0 {
        own.is_empty()
    } else {
        // SAFETY: `facts` read `v`'s layout, checked by `Probe::new` (or
        // this is that check), and `own_properties` is its shape's count.
        ptr_of(v).is_some_and(|p| unsafe { owns_exactly(p, f.own_properties, own) })
    }
}

/// `v` as an object, told by its tag alone. rquickjs's `Value::as_object`
/// first asks QuickJS which kind of object it is (six calls), which costs
/// more than the rest of a reuse check.
#[inline]
pub(crate) fn object<'a, 'js>(v: &'a Value<'js>) -> Option<&'a Object<'js>> {
    // SAFETY: `ref_object` only requires an object value, which the tag
    // says; every kind of object (array, function, error, proxy...) is an
    // `Object` to rquickjs.
    v.is_object().then(|| unsafe { v.ref_object() })
}
