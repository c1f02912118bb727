//! Lazy JS objects for items (`data`) and packet infos (`info`).
//!
//! An item stays a Rust value behind an `Rc`; its JS object is an exotic
//! QuickJS object (rquickjs `ClassKind::Exotic`) whose property reads are
//! answered from the Rust value on demand: `data.request.headers.host`
//! builds the request view, the header view and one string, nothing else.
//! Nested objects are built once per item and cached, so `data.request ===
//! data.request`. Property names are matched by atom id (a `u32` compare;
//! see [`crate::js::atom_id`]), never by string.
//!
//! To scripts the objects behave like plain objects: own enumerable
//! properties in the `AGENTS_API.md` order (so `Object.keys`, `for..in`,
//! `JSON.stringify` and `console.log` show the full `Item::to_json` shape),
//! writes become real own properties (`passed`/`failed` set the item's
//! flags), unknown names fall through to `Object.prototype`.
//!
//! A write defines an own property on the object (QuickJS finds own
//! properties before it calls the exotic hooks, so later reads and writes
//! of that name are plain). This needs the patched rquickjs-core in
//! `vendor/` (see its README): the released 0.14 glue freed every written
//! value twice.
//!
//! After the hooks have seen an item, its objects show the next item when
//! no script kept or changed them (told by `crate::probe`): the item, its
//! `protocol`, HTTP `request`/`response` and their `headers` go on to the
//! next item instead of being freed and made again. They all read one
//! [`Shown`] cell, so moving the whole tree on is a store into it, and each
//! object lets go of what it cached for the old item (endpoints, cookies,
//! bodies, names written) the next time it is read.
//!
//! A tree kept that way also has its objects made plain own properties of
//! their parents (`data.protocol`, `data.request`, `data.response`,
//! `request.headers`): QuickJS then reads them like any object's property,
//! without calling the class, and the probe checks on every item that they
//! are still exactly as the runtime defined them. The patched QuickJS in
//! `vendor/rquickjs-sys` lists such a property once, in the class's order.
//!
//! Invariant: no `RefCell` borrow is held across a QuickJS allocation (an
//! allocation may run the GC, which traces these objects).

use std::cell::{Cell, Ref, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::rc::Rc;

use reassembly::dissectors::dns::{self, DnsMessage};
use reassembly::dissectors::http::{percent_decode, HttpMessage};
use reassembly::item::{rfc3339, Message};
use reassembly::{Item, NodeInfo};
use rquickjs::class::{
    ClassKind, JsCell, JsClass, PropertyDescriptor, PropertyName, Readable, Trace, Tracer,
};
use rquickjs::object::Property;
use rquickjs::{
    Array, Atom, Class, Constructor, Ctx, JsLifetime, Object, Persistent, Result,
    String as JsString, Value,
};

use crate::js::{atom_id, from_json, num, string};
use crate::packet::PacketInfo;
use crate::probe::{addr, object, Own, Probe};

const ITEM_KEYS: [&str; 19] = reassembly::item::JSON_KEYS;
mod ik {
    pub const ID: usize = 0;
    pub const INDEX: usize = 1;
    pub const STREAM: usize = 2;
    pub const WORKER: usize = 3;
    pub const NODE: usize = 4;
    pub const PROTOCOL: usize = 5;
    pub const SRC: usize = 6;
    pub const DST: usize = 7;
    pub const TIMESTAMP: usize = 8;
    pub const START_TIME: usize = 9;
    pub const ELAPSED: usize = 10;
    pub const REQUEST: usize = 11;
    pub const RESPONSE: usize = 12;
    pub const REQUEST_SIZE: usize = 13;
    pub const RESPONSE_SIZE: usize = 14;
    pub const SIZE: usize = 15;
    pub const PASSED: usize = 16;
    pub const FAILED: usize = 17;
    pub const ERROR: usize = 18;
}
/// The slots of the item keys whose values are objects, cached per item.
mod slot {
    pub const WORKER: u8 = 0;
    pub const NODE: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const SRC: u8 = 3;
    pub const DST: u8 = 4;
    pub const REQUEST: u8 = 5;
    pub const RESPONSE: u8 = 6;
    pub const ERROR: u8 = 7;
}
/// Item key → slot.
const ITEM_SLOTS: [Option<u8>; 19] = {
    let mut s = [None; 19];
    s[ik::WORKER] = Some(slot::WORKER);
    s[ik::NODE] = Some(slot::NODE);
    s[ik::PROTOCOL] = Some(slot::PROTOCOL);
    s[ik::SRC] = Some(slot::SRC);
    s[ik::DST] = Some(slot::DST);
    s[ik::REQUEST] = Some(slot::REQUEST);
    s[ik::RESPONSE] = Some(slot::RESPONSE);
    s[ik::ERROR] = Some(slot::ERROR);
    s
};

const REQ_KEYS: [&str; 12] = [
    "method",
    "url",
    "path",
    "pathSegments",
    "targetUri",
    "httpVersion",
    "headers",
    "cookies",
    "queryString",
    "headersSize",
    "bodySize",
    "postData",
];
mod rq {
    pub const METHOD: usize = 0;
    pub const URL: usize = 1;
    pub const PATH: usize = 2;
    pub const PATH_SEGMENTS: usize = 3;
    pub const TARGET_URI: usize = 4;
    pub const HTTP_VERSION: usize = 5;
    pub const HEADERS: usize = 6;
    pub const COOKIES: usize = 7;
    pub const QUERY_STRING: usize = 8;
    pub const HEADERS_SIZE: usize = 9;
    pub const BODY_SIZE: usize = 10;
    pub const POST_DATA: usize = 11;
}
/// The slot of `headers`, in requests and responses alike.
const MSG_HEADERS_SLOT: u8 = 0;

const REQ_SLOTS: [Option<u8>; 12] = {
    let mut s = [None; 12];
    s[rq::HEADERS] = Some(MSG_HEADERS_SLOT);
    s[rq::COOKIES] = Some(1);
    s[rq::QUERY_STRING] = Some(2);
    s[rq::PATH_SEGMENTS] = Some(3);
    s[rq::POST_DATA] = Some(4);
    s
};

const RESP_KEYS: [&str; 9] = [
    "status",
    "statusText",
    "httpVersion",
    "headers",
    "cookies",
    "headersSize",
    "bodySize",
    "infoCode",
    "content",
];
mod rs {
    pub const STATUS: usize = 0;
    pub const STATUS_TEXT: usize = 1;
    pub const HTTP_VERSION: usize = 2;
    pub const HEADERS: usize = 3;
    pub const COOKIES: usize = 4;
    pub const HEADERS_SIZE: usize = 5;
    pub const BODY_SIZE: usize = 6;
    pub const INFO_CODE: usize = 7;
    pub const CONTENT: usize = 8;
}
const RESP_SLOTS: [Option<u8>; 9] = {
    let mut s = [None; 9];
    s[rs::HEADERS] = Some(MSG_HEADERS_SLOT);
    s[rs::COOKIES] = Some(1);
    s[rs::CONTENT] = Some(4);
    s
};

const PROTOCOL_KEYS: [&str; 6] = ["name", "version", "abbr", "longName", "layer4", "layer3"];

/// The fixed strings `data.protocol` answers with, made into JS strings
/// once per runtime so a read hands out one of them (a scan of this list,
/// where [`interned`] would hash the text into QuickJS's atom table every
/// time); a string not here still works, made per read. Most read first.
const PROTOCOL_STRINGS: [&str; 25] = [
    "http",
    "dns",
    "grpc",
    "redis",
    "kafka",
    "postgresql",
    "amqp",
    "HTTP",
    "DNS",
    "HTTP/2",
    "gRPC",
    "REDIS",
    "KAFKA",
    "PGSQL",
    "AMQP",
    "tcp",
    "udp",
    "ipv4",
    "ipv6",
    "1.1",
    "1.0",
    "0-9-1",
    "Hypertext Transfer Protocol -- HTTP/1.1",
    "Hypertext Transfer Protocol -- HTTP/1.0",
    "Domain Name System",
];

const PACKET_KEYS: [&str; 12] = [
    "timestamp",
    "captureLength",
    "length",
    "truncated",
    "fragmented",
    "srcIp",
    "dstIp",
    "srcPort",
    "dstPort",
    "protocol",
    "vlan",
    "core",
];

/// Header names remembered by atom id; past this many, names are looked up
/// by string each time (each remembered name pins its atom for the life of
/// the runtime).
const MAX_CACHED_HEADER_NAMES: usize = 4_096;

/// Header values up to this long are handed out as the interned string
/// of their atom: scripts use short values (`host`, `content-type`) as
/// property keys (`counts[host]++`), and an atom's own string is a key
/// QuickJS takes without hashing it again, while a value used as a key
/// often already is an atom, so the string costs no allocation either.
const MAX_ATOM_VALUE_BYTES: usize = 64;

/// Header values remembered with their interned strings: a direct-mapped
/// table of this many entries (a power of two), where a value replaces the
/// one in its entry (each remembered value pins its atom until then).
const MAX_CACHED_HEADER_VALUES: usize = 1_024;

/// Names a lazy object remembers having been written (for `in`); more are
/// still written, only `in` may miss them.
const MAX_WRITTEN_NAMES: usize = 32;

/// Header values with their interned strings, one per entry of a table
/// indexed by a hash of the value's length and its first and last eight
/// bytes: a few instructions, where a general hash of the whole value and
/// a probe cost several times more on every header read. The same three
/// numbers tell a value up to 16 bytes long from any other, so only a
/// longer one is compared byte for byte.
struct ValueCache {
    entries: Box<[Option<CachedValue>]>,
}

struct CachedValue {
    key: ValueKey,
    bytes: Box<[u8]>,
    string: Persistent<JsString<'static>>,
}

/// A value's length and its first and last eight bytes as numbers (all of
/// a shorter value, as one number).
#[derive(Clone, Copy, PartialEq, Eq)]
struct ValueKey(usize, u64, u64);

impl ValueKey {
    #[inline]
    fn of(v: &[u8]) -> ValueKey {
        let word = |b: &[u8]| <[u8; 8]>::try_from(b).map(u64::from_le_bytes);
        match (v.get(..8).map(word), v.get(v.len().wrapping_sub(8)..).map(word)) {
            (Some(Ok(first)), Some(Ok(last))) => ValueKey(v.len(), first, last),
            _ => {
                let w = v.iter().rev().fold(0, |a, &c| a << 8 | u64::from(c));
                ValueKey(v.len(), w, w)
            }
        }
    }

    /// The entry a value with this key belongs in.
    #[inline]
    fn entry(self) -> usize {
        let ValueKey(len, first, last) = self;
        let h = (first ^ last.rotate_left(29) ^ len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 54) as usize & (MAX_CACHED_HEADER_VALUES - 1)
    }
}

impl ValueCache {
    fn new() -> ValueCache {
        ValueCache { entries: (0..MAX_CACHED_HEADER_VALUES).map(|_| None).collect() }
    }

    #[inline]
    fn get(&self, key: ValueKey, v: &[u8]) -> Option<&Persistent<JsString<'static>>> {
        match self.entries.get(key.entry())? {
            Some(e) if e.key == key && (v.len() <= 16 || *e.bytes == *v) => Some(&e.string),
            _ => None,
        }
    }

    /// Remembers `string` for `v`, handing back what the entry held.
    fn put(
        &mut self,
        key: ValueKey,
        v: &[u8],
        string: Persistent<JsString<'static>>,
    ) -> Option<CachedValue> {
        self.entries
            .get_mut(key.entry())
            .and_then(|e| e.replace(CachedValue { key, bytes: v.into(), string }))
    }

    fn clear(&mut self) {
        self.entries.iter_mut().for_each(|e| *e = None);
    }
}

/// Atom ids are small sequential integers: a multiply is hash enough.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = u64::from(v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

struct HeaderName {
    exact: Box<str>,
    lower: Box<str>,
}

/// Per-runtime data every lazy object shares (Rust values only, so it can
/// sit in an `Rc` inside JS objects; the one JS value, `pins`, is dropped by
/// the runtime before QuickJS is torn down).
pub(crate) struct ItemEnv {
    pub(crate) node: NodeInfo,
    max_body: usize,
    item_ids: KeyTable,
    req_ids: KeyTable,
    resp_ids: KeyTable,
    packet_ids: KeyTable,
    protocol_ids: KeyTable,
    /// The atom ids of `data`'s keys, for the values made plain.
    item_atoms: Vec<u32>,
    /// The atom id of `headers`.
    headers_atom: u32,
    /// Header-name atoms seen so far.
    header_names: RefCell<HashMap<u32, HeaderName, BuildHasherDefault<IdHasher>>>,
    /// Header values seen lately (up to `MAX_ATOM_VALUE_BYTES`), each with
    /// its interned string: a look here instead of QuickJS's atom lookup.
    header_values: RefCell<ValueCache>,
    /// An object whose property names keep every atom id above alive.
    pins: RefCell<Option<Persistent<Object<'static>>>>,
    /// `PROTOCOL_STRINGS` as JS strings, index for index.
    fixed_strings: RefCell<Vec<Persistent<JsString<'static>>>>,
}

impl ItemEnv {
    pub(crate) fn new(ctx: &Ctx<'_>, node: NodeInfo, max_body: usize) -> Result<Rc<ItemEnv>> {
        let pins = Object::new(ctx.clone())?;
        let ids = |keys: &[&str]| -> Result<Vec<u32>> {
            keys.iter()
                .map(|k| {
                    let a = Atom::from_str(ctx.clone(), k)?;
                    pins.set(a.clone(), true)?;
                    Ok(atom_id(&a))
                })
                .collect()
        };
        let fixed_strings = PROTOCOL_STRINGS
            .iter()
            .map(|s| Ok(Persistent::save(ctx, Atom::from_str(ctx.clone(), s)?.to_js_string()?)))
            .collect::<Result<Vec<_>>>()?;
        let item_atoms = ids(&ITEM_KEYS)?;
        let req_atoms = ids(&REQ_KEYS)?;
        Ok(Rc::new(ItemEnv {
            node,
            max_body,
            item_ids: KeyTable::new(&item_atoms),
            headers_atom: req_atoms.get(rq::HEADERS).copied().unwrap_or(0),
            req_ids: KeyTable::new(&req_atoms),
            resp_ids: KeyTable::new(&ids(&RESP_KEYS)?),
            packet_ids: KeyTable::new(&ids(&PACKET_KEYS)?),
            protocol_ids: KeyTable::new(&ids(&PROTOCOL_KEYS)?),
            item_atoms,
            header_names: RefCell::new(HashMap::default()),
            header_values: RefCell::new(ValueCache::new()),
            pins: RefCell::new(Some(Persistent::save(ctx, pins))),
            fixed_strings: RefCell::new(fixed_strings),
        }))
    }

    /// Drops the pinned atoms; called while the runtime is still alive.
    pub(crate) fn release(&self) {
        self.pins.borrow_mut().take();
        self.fixed_strings.borrow_mut().clear();
        self.header_names.borrow_mut().clear();
        self.header_values.borrow_mut().clear();
    }

    /// A header value as its interned string ([`interned`]), remembered;
    /// `None` when it is longer than `MAX_ATOM_VALUE_BYTES` or not UTF-8.
    fn interned_value<'js>(&self, ctx: &Ctx<'js>, v: &[u8]) -> Option<Result<Value<'js>>> {
        if v.len() > MAX_ATOM_VALUE_BYTES {
            return None;
        }
        let key = ValueKey::of(v);
        if let Some(s) = self.header_values.borrow().get(key, v) {
            return Some(s.clone().restore(ctx).map(JsString::into_value));
        }
        let text = std::str::from_utf8(v).ok()?;
        let value = match interned(ctx, text) {
            Ok(value) => value,
            Err(e) => return Some(Err(e)),
        };
        if let Some(s) = value.as_string() {
            let old = self.header_values.borrow_mut().put(key, v, Persistent::save(ctx, s.clone()));
            // Freed after the borrow ends (a free may run the GC).
            drop(old);
        }
        Some(Ok(value))
    }

    /// `s` as a JS string: one of `PROTOCOL_STRINGS` made at start, or a
    /// new one.
    fn fixed_string<'js>(&self, ctx: &Ctx<'js>, s: &str) -> Result<Value<'js>> {
        if let Some(i) = PROTOCOL_STRINGS.iter().position(|t| *t == s) {
            if let Some(js) = self.fixed_strings.borrow().get(i) {
                return Ok(js.clone().restore(ctx)?.into_value());
            }
        }
        interned(ctx, s)
    }

    /// Looks up (and remembers) a header-name atom, then calls `f` with its
    /// name as written and lower-cased.
    fn with_name<'js, R>(
        &self,
        ctx: &Ctx<'js>,
        atom: &Atom<'js>,
        f: impl FnOnce(&str, &str) -> R,
    ) -> Option<R> {
        let id = atom_id(atom);
        if let Some(n) = self.header_names.borrow().get(&id) {
            return Some(f(&n.exact, &n.lower));
        }
        let exact = atom.to_string().ok()?;
        let lower = exact.to_ascii_lowercase();
        let r = f(&exact, &lower);
        if self.header_names.borrow().len() < MAX_CACHED_HEADER_NAMES {
            let pins = self.pins.borrow().clone();
            if let Some(p) = pins.and_then(|p| p.restore(ctx).ok()) {
                if p.set(atom.clone(), true).is_ok() {
                    self.header_names
                        .borrow_mut()
                        .insert(id, HeaderName { exact: exact.into(), lower: lower.into() });
                }
            }
        }
        Some(r)
    }
}

/// Atom id → key index for one lazy class: atom ids are small sequential
/// integers, so a byte per id up to the largest key's is a direct lookup
/// (a scan of the class's ids compared up to 19 per property read). Ids
/// past the table, such as integer-tagged atoms (`data[0]`), are no key.
struct KeyTable(Box<[u8]>);

impl KeyTable {
    const NONE: u8 = u8::MAX;

    fn new(ids: &[u32]) -> KeyTable {
        let len = ids.iter().max().map_or(0, |m| *m as usize + 1);
        let mut table = vec![Self::NONE; len];
        for (k, id) in ids.iter().enumerate() {
            if let (Some(slot), Ok(k)) = (table.get_mut(*id as usize), u8::try_from(k)) {
                *slot = k;
            }
        }
        KeyTable(table.into_boxed_slice())
    }

    #[inline]
    fn get(&self, id: u32) -> Option<usize> {
        let k = *self.0.get(usize::try_from(id).ok()?)?;
        (k != Self::NONE).then_some(usize::from(k))
    }
}

#[inline]
fn key_of(table: &KeyTable, atom: &Atom<'_>) -> Option<usize> {
    table.get(atom_id(atom))
}

// ---------------------------------------------------------------------
// What every lazy class shares: object-valued keys cached in slots, writes
// turned into own properties, unknown names answered by the prototype.

/// The state every lazy object has besides its data. Classes with
/// object-valued keys also keep those values, once built, in a slot set
/// sized to their count (`ItemSlots`, `MsgSlots`; so `data.request ===
/// data.request`): the object is copied into its allocation whole, so it
/// holds nothing its class does not use.
#[derive(JsLifetime)]
struct Common<'js> {
    env: Rc<ItemEnv>,
    /// Shared by all lazy objects of the runtime (an empty object whose
    /// prototype is `Object.prototype`).
    proto: Object<'js>,
    written: RefCell<Vec<u32>>,
    /// The [`Shown::count`] of the item this object last showed.
    seen: Cell<u64>,
}

/// The item one tree of lazy objects shows (`data` and the objects under
/// it, each holding the cell), and how many items the tree has shown:
/// the tree moves on to the next item by a store here ([`ItemObj::rebind`]),
/// and an object that finds the count past its own lets go of what it
/// cached for the item before ([`Common::catch_up`]).
struct Shown {
    item: RefCell<Item>,
    count: Cell<u64>,
}

impl Shown {
    fn new(item: Item) -> Rc<Shown> {
        Rc::new(Shown { item: RefCell::new(item), count: Cell::new(0) })
    }
}

/// A fixed set of cached values (named fields, not an array, so the
/// class stays `JsLifetime`).
trait SlotSet<'js> {
    fn slot(&mut self, i: u8) -> Option<&mut Option<Value<'js>>>;
    /// Bit `i` set when slot `i` holds a value: what the reuse checks,
    /// run for every item, look at instead of every slot.
    fn filled(&mut self) -> &mut u8;
    fn trace<'a>(&self, tracer: Tracer<'a, 'js>);
}

/// The slots `bits` marks, lowest first.
fn slots_in(mut bits: u8) -> impl Iterator<Item = u8> {
    std::iter::from_fn(move || {
        let i = u8::try_from(bits.trailing_zeros()).ok().filter(|&i| i < 8)?;
        bits &= bits - 1;
        Some(i)
    })
}

macro_rules! slot_set {
    ($name:ident { $($field:ident = $i:literal),* }) => {
        #[derive(JsLifetime, Default)]
        struct $name<'js> {
            filled: u8,
            $($field: Option<Value<'js>>,)*
        }

        impl<'js> SlotSet<'js> for $name<'js> {
            fn filled(&mut self) -> &mut u8 {
                &mut self.filled
            }

            fn slot(&mut self, i: u8) -> Option<&mut Option<Value<'js>>> {
                match i {
                    $($i => Some(&mut self.$field),)*
                    _ => None,
                }
            }

            fn trace<'a>(&self, tracer: Tracer<'a, 'js>) {
                $(if let Some(v) = &self.$field {
                    v.trace(tracer);
                })*
            }
        }
    };
}

slot_set!(ItemSlots { s0 = 0, s1 = 1, s2 = 2, s3 = 3, s4 = 4, s5 = 5, s6 = 6, s7 = 7 });
slot_set!(MsgSlots { s0 = 0, s1 = 1, s2 = 2, s3 = 3, s4 = 4 });

/// The slots whose values the runtime has also made own properties of
/// their object, in the order it defined them, which is the order QuickJS
/// keeps them in ([`ItemObj::make_plain`]).
#[derive(Clone, Copy, Default)]
struct Plain {
    n: u8,
    slots: [u8; 3],
}

impl Plain {
    fn slots(&self) -> &[u8] {
        self.slots.get(..usize::from(self.n)).unwrap_or_default()
    }

    fn has(&self, slot: u8) -> bool {
        self.slots().contains(&slot)
    }

    fn mask(&self) -> u8 {
        self.slots().iter().fold(0, |m, &i| m | 1 << i)
    }

    /// Without `slot`, the others in their order.
    fn without(self, slot: u8) -> Plain {
        self.slots()
            .iter()
            .filter(|&&i| i != slot)
            .fold(Plain::default(), |p, &i| p.with(i).unwrap_or(p))
    }

    /// With `slot` added; `None` when full.
    fn with(mut self, slot: u8) -> Option<Plain> {
        *self.slots.get_mut(usize::from(self.n))? = slot;
        self.n += 1;
        Some(self)
    }

    /// What the probe expects of the object's own properties: the value in
    /// each plain slot under the name `atom_of` gives it. `None` when a
    /// plain slot is empty, which only a bug would cause.
    fn own<'js, S: SlotSet<'js>>(
        &self,
        slots: &mut S,
        atom_of: impl Fn(u8) -> u32,
    ) -> Option<([Own; 3], usize)> {
        let mut own = [Own { atom: 0, value: 0 }; 3];
        for (o, &i) in own.iter_mut().zip(self.slots()) {
            let value = slots.slot(i)?.as_ref().and_then(addr)?;
            *o = Own { atom: atom_of(i), value };
        }
        Some((own, usize::from(self.n)))
    }
}

/// The value cached in `slot`, built first if need be.
#[inline]
fn cached<'js, S: SlotSet<'js>>(
    slots: &RefCell<S>,
    slot: u8,
    build: impl FnOnce() -> Result<Value<'js>>,
) -> Result<Value<'js>> {
    if let Some(Some(v)) = slots.borrow_mut().slot(slot) {
        return Ok(v.clone());
    }
    let v = build()?;
    let mut slots = slots.borrow_mut();
    if let Some(s) = slots.slot(slot) {
        *s = Some(v.clone());
        *slots.filled() |= 1 << slot;
    }
    Ok(v)
}

fn trace_slots<'a, 'js, S: SlotSet<'js>>(slots: &RefCell<S>, tracer: Tracer<'a, 'js>) {
    // A borrow held elsewhere means the GC runs from inside a build;
    // skipping is safe (an untraced child only looks externally held).
    if let Ok(s) = slots.try_borrow() {
        s.trace(tracer);
    }
}

impl<'js> Common<'js> {
    fn new(env: Rc<ItemEnv>, proto: Object<'js>) -> Self {
        Common { env, proto, written: RefCell::new(Vec::new()), seen: Cell::new(0) }
    }

    /// A child lazy object sharing this one's prototype and env, current
    /// with `shown`.
    fn child<C: JsClass<'js>>(
        &self,
        shown: &Shown,
        make: impl FnOnce(Common<'js>) -> C,
    ) -> Result<Value<'js>> {
        instance(&self.env, &self.proto, |common| {
            common.seen.set(shown.count.get());
            make(common)
        })
    }

    /// Whether `shown` has moved on since this object last showed its
    /// item; if so the names written for that item are forgotten and the
    /// object is current again (the caller drops what it cached).
    #[inline]
    fn catch_up(&self, shown: &Shown) -> bool {
        let count = shown.count.get();
        if self.seen.get() == count {
            return false;
        }
        self.seen.set(count);
        self.written.borrow_mut().clear();
        true
    }

    fn note_written(&self, atom: &Atom<'js>) {
        let id = atom_id(atom);
        let mut w = self.written.borrow_mut();
        if w.len() < MAX_WRITTEN_NAMES && !w.contains(&id) {
            w.push(id);
        }
    }

    fn trace<'a>(&self, tracer: Tracer<'a, 'js>) {
        self.proto.trace(tracer);
    }

    fn was_written(&self, atom: &Atom<'js>) -> bool {
        let id = atom_id(atom);
        self.written.borrow().contains(&id)
    }

    /// A write (module docs): an own property on the receiver (the object
    /// itself, or one that has it as its prototype).
    fn write(&self, atom: Atom<'js>, receiver: Value<'js>, value: Value<'js>) -> Result<bool> {
        match object(&receiver) {
            Some(o) => {
                self.note_written(&atom);
                define(o, atom, value).map(|_| true)
            }
            None => Ok(false),
        }
    }

    fn proto_get(&self, atom: Atom<'js>) -> Result<Value<'js>> {
        self.proto.get(atom)
    }

    fn proto_has(&self, atom: Atom<'js>) -> Result<bool> {
        self.proto.contains_key(atom)
    }
}

fn define<'js>(o: &Object<'js>, atom: Atom<'js>, value: Value<'js>) -> Result<()> {
    o.prop(atom, Property::from(value).writable().enumerable().configurable())
}

/// What the runtime needs to create lazy objects: their shared prototype.
#[derive(Clone)]
pub(crate) struct Lazy<'js> {
    pub(crate) proto: Object<'js>,
}

impl<'js> Lazy<'js> {
    /// Built once per runtime.
    pub(crate) fn new(ctx: &Ctx<'js>) -> Result<Lazy<'js>> {
        Ok(Lazy { proto: Object::new(ctx.clone())? })
    }
}

/// A new lazy object of class `C` on the runtime's prototype.
fn instance<'js, C: JsClass<'js>>(
    env: &Rc<ItemEnv>,
    proto: &Object<'js>,
    make: impl FnOnce(Common<'js>) -> C,
) -> Result<Value<'js>> {
    Ok(instance_class(env, proto, make)?.into_value())
}

fn instance_class<'js, C: JsClass<'js>>(
    env: &Rc<ItemEnv>,
    proto: &Object<'js>,
    make: impl FnOnce(Common<'js>) -> C,
) -> Result<Class<'js, C>> {
    let obj = make(Common::new(env.clone(), proto.clone()));
    Class::instance_proto(obj, proto.clone())
}

/// The item behind `data`, for `test.pass`.
pub(crate) fn item_of<'js>(v: &Value<'js>) -> Option<Class<'js, ItemObj<'js>>> {
    Class::<ItemObj>::from_object(object(v)?)
}

fn value_desc(v: Value<'_>) -> PropertyDescriptor<'_> {
    PropertyDescriptor::new_value(v, true, true, true)
}

fn names<'js>(ctx: &Ctx<'js>, keys: &[&str]) -> Result<Vec<PropertyName<'js>>> {
    keys.iter()
        .map(|k| Ok(PropertyName { atom: Atom::from_str(ctx.clone(), k)?, is_enumerable: true }))
        .collect()
}

/// Implements the exotic `JsClass` plumbing for a lazy class with a fixed
/// key set; the class provides `common`, `catch_up` (which every hook
/// calls first), `lookup`, `value`, `set_known`, `keys`.
macro_rules! lazy_class {
    ($ty:ident, $name:literal) => {
        impl<'js> JsClass<'js> for $ty<'js> {
            const NAME: &'static str = $name;
            const KIND: ClassKind = ClassKind::Exotic;
            type Mutable = Readable;

            fn constructor(_ctx: &Ctx<'js>) -> Result<Option<Constructor<'js>>> {
                Ok(None)
            }

            // Own properties (written ones) are found by QuickJS before it
            // calls these.
            fn exotic_get_property(
                this: &JsCell<'js, Self>,
                ctx: &Ctx<'js>,
                atom: &Atom<'js>,
                receiver: &Value<'js>,
            ) -> Result<Value<'js>> {
                let me = this.borrow();
                me.catch_up();
                match me.lookup(atom) {
                    Some(k) => me.value(ctx, k, Some(receiver)),
                    None => me.common().proto_get(atom.clone()),
                }
            }

            fn exotic_set_property(
                this: &JsCell<'js, Self>,
                _ctx: &Ctx<'js>,
                atom: Atom<'js>,
                receiver: Value<'js>,
                value: Value<'js>,
            ) -> Result<bool> {
                let me = this.borrow();
                me.catch_up();
                if let Some(k) = me.lookup(&atom) {
                    if me.set_known(k, &value) {
                        return Ok(true);
                    }
                }
                me.common().write(atom, receiver, value)
            }

            fn exotic_delete_property(
                _this: &JsCell<'js, Self>,
                _ctx: &Ctx<'js>,
                _atom: Atom<'js>,
            ) -> Result<bool> {
                // Lazy keys stay; written ones are own properties QuickJS
                // deletes itself.
                Ok(true)
            }

            fn exotic_has_property(
                this: &JsCell<'js, Self>,
                _ctx: &Ctx<'js>,
                atom: Atom<'js>,
            ) -> Result<bool> {
                let me = this.borrow();
                me.catch_up();
                if me.lookup(&atom).is_some() || me.common().was_written(&atom) {
                    return Ok(true);
                }
                me.common().proto_has(atom)
            }

            fn exotic_get_own_property(
                this: &JsCell<'js, Self>,
                ctx: &Ctx<'js>,
                atom: Atom<'js>,
            ) -> Result<Option<PropertyDescriptor<'js>>> {
                let me = this.borrow();
                me.catch_up();
                match me.lookup(&atom) {
                    Some(k) => Ok(Some(value_desc(me.value(ctx, k, None)?))),
                    None => Ok(None),
                }
            }

            fn exotic_get_own_property_names(
                this: &JsCell<'js, Self>,
                ctx: &Ctx<'js>,
            ) -> Result<Vec<PropertyName<'js>>> {
                names(ctx, this.borrow().keys())
            }
        }

        impl<'js> Trace<'js> for $ty<'js> {
            fn trace<'a>(&self, tracer: Tracer<'a, 'js>) {
                self.common.trace(tracer);
                self.trace_slots(tracer);
            }
        }
    };
}

/// A lazy class whose keys are all read-only leaves (no cached children,
/// no keys with a meaning when written); the class provides only `value`.
macro_rules! leaf_class {
    ($ty:ident, $name:literal, $keys:ident, $ids:ident) => {
        lazy_class!($ty, $name);

        impl<'js> $ty<'js> {
            fn common(&self) -> &Common<'js> {
                &self.common
            }

            fn trace_slots<'a>(&self, _tracer: Tracer<'a, 'js>) {}

            fn keys(&self) -> &'static [&'static str] {
                &$keys
            }

            #[inline]
            fn lookup(&self, atom: &Atom<'js>) -> Option<usize> {
                key_of(&self.common.env.$ids, atom)
            }

            fn set_known(&self, _k: usize, _v: &Value<'js>) -> bool {
                false
            }
        }
    };
}

// ---------------------------------------------------------------------
// data

#[derive(JsLifetime)]
pub(crate) struct ItemObj<'js> {
    /// The item shown, with the objects under this one; the next item
    /// when the tree is reused (`rebind`), a cell of its own when a script
    /// kept an object under this one.
    shown: RefCell<Rc<Shown>>,
    passed: Cell<bool>,
    failed: Cell<bool>,
    common: Common<'js>,
    slots: RefCell<ItemSlots<'js>>,
    plain: Cell<Plain>,
}

lazy_class!(ItemObj, "Item");

/// `data` for an item.
pub(crate) fn item_value<'js>(
    _ctx: &Ctx<'js>,
    lazy: &Lazy<'js>,
    env: &Rc<ItemEnv>,
    item: Item,
) -> Result<Value<'js>> {
    instance(env, &lazy.proto, |common| ItemObj::new(item, common))
}

impl<'js> ItemObj<'js> {
    fn new(item: Item, common: Common<'js>) -> Self {
        let (passed, failed) = (item.passed, item.failed);
        ItemObj {
            shown: RefCell::new(Shown::new(item)),
            passed: Cell::new(passed),
            failed: Cell::new(failed),
            common,
            slots: RefCell::default(),
            plain: Cell::default(),
        }
    }

    /// Runs `f` on the item shown (`kfl.match`). `f` must not call into
    /// QuickJS: the item's cell stays borrowed while it runs.
    pub(crate) fn with_item<R>(&self, f: impl FnOnce(&Item) -> R) -> R {
        let shown = self.shown.borrow();
        let item = shown.item.borrow();
        f(&item)
    }

    /// `test.pass` / `test.fail`.
    pub(crate) fn mark(&self, passed: bool) {
        if passed {
            self.passed.set(true);
        } else {
            self.failed.set(true);
        }
    }

    fn common(&self) -> &Common<'js> {
        &self.common
    }

    /// The root is made current by `rebind` itself.
    #[inline]
    fn catch_up(&self) {}

    fn trace_slots<'a>(&self, tracer: Tracer<'a, 'js>) {
        trace_slots(&self.slots, tracer);
    }

    fn keys(&self) -> &'static [&'static str] {
        &ITEM_KEYS
    }

    #[inline]
    fn lookup(&self, atom: &Atom<'js>) -> Option<usize> {
        key_of(&self.common.env.item_ids, atom)
    }

    fn set_known(&self, k: usize, v: &Value<'js>) -> bool {
        let truthy = v.as_bool().unwrap_or(!(v.is_null() || v.is_undefined()));
        match k {
            ik::PASSED => self.passed.set(truthy),
            ik::FAILED => self.failed.set(truthy),
            _ => return false,
        }
        true
    }

    fn value(
        &self,
        ctx: &Ctx<'js>,
        k: usize,
        _receiver: Option<&Value<'js>>,
    ) -> Result<Value<'js>> {
        if let Some(slot) = ITEM_SLOTS.get(k).copied().flatten() {
            return cached(&self.slots, slot, || self.build(ctx, k));
        }
        self.build(ctx, k)
    }

    fn build(&self, ctx: &Ctx<'js>, k: usize) -> Result<Value<'js>> {
        let shown = self.shown.borrow().clone();
        let it = &*shown.item.borrow();
        let ex = &it.exchange;
        let env = &self.common.env;
        Ok(match k {
            ik::ID => string(ctx, &format!("{}/{}-{}", env.node.name, it.stream, it.index))?,
            ik::INDEX => num(ctx, u64::from(it.index)),
            ik::STREAM => string(ctx, &it.stream.to_string())?,
            ik::WORKER | ik::NODE => {
                let o = Object::new(ctx.clone())?;
                o.set("ip", env.node.ip.as_str())?;
                o.set("name", env.node.name.as_str())?;
                o.into_value()
            }
            ik::PROTOCOL => {
                self.common.child(&shown, |common| ProtocolObj { shown: shown.clone(), common })?
            }
            ik::SRC => endpoint(ctx, &it.src)?,
            ik::DST => endpoint(ctx, &it.dst)?,
            ik::TIMESTAMP => num(ctx, it.ts_ns() / 1_000_000),
            ik::START_TIME => string(ctx, &rfc3339(it.ts_ns()))?,
            ik::ELAPSED => num(ctx, it.elapsed_us()),
            ik::REQUEST => message(ctx, &shown, it, &self.common, false)?,
            ik::RESPONSE => message(ctx, &shown, it, &self.common, true)?,
            ik::REQUEST_SIZE => num(ctx, ex.request_size),
            ik::RESPONSE_SIZE => num(ctx, ex.response_size),
            ik::SIZE => num(ctx, ex.request_size.saturating_add(ex.response_size)),
            ik::PASSED => Value::new_bool(ctx.clone(), self.passed.get()),
            ik::FAILED => Value::new_bool(ctx.clone(), self.failed.get()),
            ik::ERROR => match &ex.error {
                Some(e) => {
                    let o = Object::new(ctx.clone())?;
                    o.set("type", e.kind.as_str())?;
                    o.set("msg", e.msg.as_ref())?;
                    o.into_value()
                }
                None => Value::new_null(ctx.clone()),
            },
            _ => Value::new_undefined(ctx.clone()),
        })
    }
}

fn endpoint<'js>(ctx: &Ctx<'js>, e: &reassembly::item::Endpoint) -> Result<Value<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set("ip", e.ip.to_string())?;
    o.set("port", e.port.to_string())?;
    o.set("name", e.name.as_str())?;
    o.set("namespace", e.namespace.as_str())?;
    Ok(o.into_value())
}

/// `request` or `response` of `item`, which `shown` holds.
fn message<'js>(
    ctx: &Ctx<'js>,
    shown: &Rc<Shown>,
    item: &Item,
    common: &Common<'js>,
    response: bool,
) -> Result<Value<'js>> {
    let m = if response { &item.exchange.response } else { &item.exchange.request };
    let env = &common.env;
    Ok(match m {
        Some(Message::Http(_)) => common.child(shown, |common| MsgObj {
            shown: shown.clone(),
            response,
            common,
            slots: RefCell::default(),
            plain: Cell::default(),
        })?,
        // DNS messages are small and read whole; build them at once.
        Some(Message::Dns(d)) => dns_message(ctx, d, response)?,
        // `{}`, never null (`Item::to_json`).
        None => Object::new(ctx.clone())?.into_value(),
        #[allow(unreachable_patterns)]
        Some(_) => {
            let key = if response { "response" } else { "request" };
            from_json(ctx, item_json(item, &env.node).get(key).unwrap_or(&serde_json::Value::Null))?
        }
    })
}

/// The full JSON of an item, for protocols whose fields have no lazy view.
fn item_json(it: &Item, node: &NodeInfo) -> serde_json::Value {
    it.to_json(node)
}

fn dns_message<'js>(ctx: &Ctx<'js>, m: &DnsMessage, response: bool) -> Result<Value<'js>> {
    let json = if response { dns::response_json(m) } else { dns::request_json(m) };
    from_json(ctx, &json)
}

// ---------------------------------------------------------------------
// Reuse: the objects of an item no script kept or changed show the next
// item, so a hook that reads `data.request.headers.host` makes and frees
// no object at all (see `crate::probe` for how "kept" and "changed" are
// told). An object a script kept keeps showing its own item for good.

/// The slots of `data` that hold objects of its tree (they read its
/// [`Shown`] cell): `protocol`, and the HTTP `request` and `response`.
const ITEM_TREE_SLOTS: u8 = 1 << slot::PROTOCOL | 1 << slot::REQUEST | 1 << slot::RESPONSE;

/// Lets go of the cached values of the slots in `mask`.
#[inline]
fn drop_slots<'js, S: SlotSet<'js>>(slots: &RefCell<S>, mask: u8) {
    let gone = *slots.borrow_mut().filled() & mask;
    if gone != 0 {
        drop_filled_slots(slots, gone);
    }
}

/// `drop_slots` for slots known filled; the values are dropped after the
/// borrow ends (a free may run finalizers).
#[inline(never)]
fn drop_filled_slots<'js, S: SlotSet<'js>>(slots: &RefCell<S>, gone: u8) {
    let mut dropped: [Option<Value<'js>>; 8] = Default::default();
    {
        let mut s = slots.borrow_mut();
        *s.filled() &= !gone;
        for i in slots_in(gone) {
            if let (Some(slot), Some(d)) = (s.slot(i), dropped.get_mut(usize::from(i))) {
                *d = slot.take();
            }
        }
    }
    drop(dropped);
}

impl<'js> ItemObj<'js> {
    /// The atom id of `data`'s key whose value tree slot `slot` holds.
    fn slot_atom(&self, slot: u8) -> u32 {
        tree_key(slot).and_then(|k| self.common.env.item_atoms.get(k)).copied().unwrap_or(0)
    }

    /// The name of `data`'s key whose value tree slot `slot` holds.
    fn slot_name(&self, slot: u8) -> Result<Atom<'js>> {
        let name = tree_key(slot).and_then(|k| ITEM_KEYS.get(k)).copied().unwrap_or_default();
        Atom::from_str(self.common.proto.ctx().clone(), name)
    }

    /// After the hooks: whether no script kept or changed `data` (`v`):
    /// no holder but the runtime, no own property but those it made
    /// plain, each still holding its value.
    fn untouched(&self, probe: &Probe, v: &Value<'js>) -> bool {
        let plain = self.plain.get();
        let mut slots = self.slots.borrow_mut();
        match plain.own(&mut *slots, |i| self.slot_atom(i)) {
            Some((own, n)) => {
                probe.untouched_with(v, &self.common.proto, 1, own.get(..n).unwrap_or_default())
            }
            None => false,
        }
    }

    /// After the hooks, on an untouched `data`: whether the objects of its
    /// tree stay for the next item, which they do if every one is
    /// untouched too. Otherwise all are let go (they are made again on a
    /// read), and the kept one keeps the old item's cell, since `rebind`
    /// then gives `data` a new one.
    fn keep_tree(&self, probe: &Probe) -> Tree {
        let proto = &self.common.proto;
        let plain = self.plain.get();
        let mut all_plain = true;
        let untouched = {
            let mut s = self.slots.borrow_mut();
            let tree = *s.filled() & ITEM_TREE_SLOTS;
            slots_in(tree).all(|i| {
                let holders = 1 + i32::from(plain.has(i));
                match s.slot(i) {
                    Some(Some(v)) if i == slot::PROTOCOL => {
                        all_plain &= plain.has(i);
                        probe.untouched_with(v, proto, holders, &[])
                    }
                    Some(Some(v)) => match object(v).and_then(|o| o.as_class::<MsgObj>()) {
                        Some(m) => {
                            let m = m.borrow();
                            all_plain &= plain.has(i) && m.all_plain();
                            m.untouched(probe, v, holders)
                        }
                        // A DNS message, a plain object: let go with its item.
                        None => true,
                    },
                    _ => true,
                }
            })
        };
        if !untouched {
            drop_slots(&self.slots, ITEM_TREE_SLOTS);
            return Tree::Dropped;
        }
        if all_plain {
            Tree::Plain
        } else {
            Tree::Kept
        }
    }

    /// On a kept tree: its objects `data` (`this`) holds in slots become
    /// plain own properties of `data` too, and the `headers` of its HTTP
    /// messages of theirs, so QuickJS answers later reads of those names
    /// from the objects themselves without calling the class. Done once
    /// per object; the probe then checks the properties are as defined.
    /// A DNS message is not made plain: it is let go with its item.
    fn make_plain(&self, this: &Object<'js>) -> Result<()> {
        let plain = self.plain.get();
        let mut fresh: [Option<(u8, Value<'js>)>; 3] = Default::default();
        let mut msgs: [Option<Value<'js>>; 2] = Default::default();
        {
            let mut s = self.slots.borrow_mut();
            let tree = *s.filled() & ITEM_TREE_SLOTS;
            for (n, i) in slots_in(tree).enumerate() {
                let Some(Some(v)) = s.slot(i) else { continue };
                let msg = object(v).and_then(|o| o.as_class::<MsgObj>()).is_some();
                if msg {
                    if let Some(m) = msgs.iter_mut().find(|m| m.is_none()) {
                        *m = Some(v.clone());
                    }
                }
                if !plain.has(i) && (msg || i == slot::PROTOCOL) {
                    if let Some(f) = fresh.get_mut(n) {
                        *f = Some((i, v.clone()));
                    }
                }
            }
        }
        for (i, v) in fresh.into_iter().flatten() {
            let Some(next) = self.plain.get().with(i) else { break };
            define(this, self.slot_name(i)?, v)?;
            self.plain.set(next);
        }
        for m in msgs.into_iter().flatten() {
            if let Some(o) = object(&m) {
                if let Some(msg) = o.as_class::<MsgObj>() {
                    msg.borrow().make_plain(o)?;
                }
            }
        }
        Ok(())
    }

    /// The slots `rebind` lets go of to show `item`: all but the tree's,
    /// and a request or response that is no longer an HTTP message (or
    /// was none).
    fn gone_for(&self, item: &Item) -> u8 {
        let mut gone = !ITEM_TREE_SLOTS;
        {
            let shown = self.shown.borrow();
            let old = shown.item.borrow();
            if old.http_request().is_none() || item.http_request().is_none() {
                gone |= 1 << slot::REQUEST;
            }
            if old.http_response().is_none() || item.http_response().is_none() {
                gone |= 1 << slot::RESPONSE;
            }
        }
        gone
    }

    /// Takes back the values of the plain slots in `mask` (`this` is
    /// `data`): their own properties are deleted, before `rebind` lets go
    /// of the slots.
    fn unplain(&self, this: &Object<'js>, mask: u8) -> Result<()> {
        for i in slots_in(mask) {
            this.remove(self.slot_name(i)?)?;
            self.plain.set(self.plain.get().without(i));
        }
        Ok(())
    }

    /// Shows `item` from now on, letting go of the slots in `gone`
    /// ([`ItemObj::gone_for`]). The tree's objects, when `keep_tree` kept
    /// them, read `item` from the same cell, which takes the new item in
    /// place of the old; the values cached for the old item are let go
    /// here, the tree's objects let go of theirs when next read.
    fn rebind(&self, item: Item, gone: u8) {
        self.passed.set(item.passed);
        self.failed.set(item.failed);
        self.common.written.borrow_mut().clear();
        let tree = *self.slots.borrow_mut().filled() & ITEM_TREE_SLOTS;
        // With no object of the tree in a slot, any other holder of the
        // cell is an object a script kept: it keeps the cell.
        if tree == 0 && Rc::strong_count(&self.shown.borrow()) > 1 {
            drop_slots(&self.slots, u8::MAX);
            *self.shown.borrow_mut() = Shown::new(item);
            return;
        }
        drop_slots(&self.slots, gone);
        let shown = self.shown.borrow();
        *shown.item.borrow_mut() = item;
        shown.count.set(shown.count.get().wrapping_add(1));
    }
}

/// The key of `data` whose value tree slot `slot` holds.
fn tree_key(slot: u8) -> Option<usize> {
    match slot {
        slot::PROTOCOL => Some(ik::PROTOCOL),
        slot::REQUEST => Some(ik::REQUEST),
        slot::RESPONSE => Some(ik::RESPONSE),
        _ => None,
    }
}

/// What [`ItemObj::keep_tree`] found.
enum Tree {
    /// A script kept or changed an object of the tree: all were let go.
    Dropped,
    /// Kept, with an object not made plain yet.
    Kept,
    /// Kept, every object plain already.
    Plain,
}

/// A kind of lazy object the runtime hands to a hook, one per input, made
/// anew or rebound from the one before (`AgentRuntime::dispatch`). Typed,
/// so the object goes from the hook back to the next input without its
/// class being looked up again: the runtime made it, a script cannot
/// swap it for another.
pub(crate) trait Reusable {
    type Input;
    type Obj<'js>: JsClass<'js>;

    /// The object for `input`: `spare` rebound to it, or a new one.
    fn make<'js>(
        lazy: &Lazy<'js>,
        env: &Rc<ItemEnv>,
        input: Self::Input,
        spare: Option<Class<'js, Self::Obj<'js>>>,
    ) -> Result<Class<'js, Self::Obj<'js>>>;

    /// After the hooks: the object again if it can show the next input,
    /// else `None` (the runtime lets go of it).
    fn spare<'js>(
        probe: &Probe,
        lazy: &Lazy<'js>,
        obj: Class<'js, Self::Obj<'js>>,
    ) -> Option<Class<'js, Self::Obj<'js>>>;
}

/// `data` for items.
pub(crate) struct Items;

impl Reusable for Items {
    type Input = Item;
    type Obj<'js> = ItemObj<'js>;

    fn make<'js>(
        lazy: &Lazy<'js>,
        env: &Rc<ItemEnv>,
        item: Item,
        spare: Option<Class<'js, ItemObj<'js>>>,
    ) -> Result<Class<'js, ItemObj<'js>>> {
        if let Some(data) = spare {
            let me = data.borrow();
            let gone = me.gone_for(&item);
            let plain = gone & me.plain.get().mask();
            // A failure to take a value back (out of memory) leaves this
            // `data` as it was: a new one shows the item.
            if plain == 0 || object(data.as_value()).is_some_and(|o| me.unplain(o, plain).is_ok()) {
                me.rebind(item, gone);
                drop(me);
                return Ok(data);
            }
        }
        instance_class(env, &lazy.proto, |common| ItemObj::new(item, common))
    }

    fn spare<'js>(
        probe: &Probe,
        _lazy: &Lazy<'js>,
        data: Class<'js, ItemObj<'js>>,
    ) -> Option<Class<'js, ItemObj<'js>>> {
        let me = data.borrow();
        if !me.untouched(probe, data.as_value()) {
            return None;
        }
        match me.keep_tree(probe) {
            Tree::Plain => {}
            // The properties made plain hold the objects let go.
            Tree::Dropped if me.plain.get().n != 0 => return None,
            Tree::Dropped => {}
            // A failure here (out of memory) leaves a property the probe
            // does not know of: this `data` is not reused.
            Tree::Kept => me.make_plain(object(data.as_value())?).ok()?,
        }
        drop(me);
        Some(data)
    }
}

/// `info` for packets.
pub(crate) struct Packets;

impl Reusable for Packets {
    type Input = PacketInfo;
    type Obj<'js> = PacketObj<'js>;

    fn make<'js>(
        lazy: &Lazy<'js>,
        env: &Rc<ItemEnv>,
        p: PacketInfo,
        spare: Option<Class<'js, PacketObj<'js>>>,
    ) -> Result<Class<'js, PacketObj<'js>>> {
        match spare {
            Some(info) => {
                let me = info.borrow();
                me.common.written.borrow_mut().clear();
                *me.info.borrow_mut() = p;
                drop(me);
                Ok(info)
            }
            None => instance_class(env, &lazy.proto, |common| PacketObj {
                info: RefCell::new(p),
                common,
            }),
        }
    }

    fn spare<'js>(
        probe: &Probe,
        lazy: &Lazy<'js>,
        info: Class<'js, PacketObj<'js>>,
    ) -> Option<Class<'js, PacketObj<'js>>> {
        probe.untouched(info.as_value(), &lazy.proto).then_some(info)
    }
}

// ---------------------------------------------------------------------
// data.request / data.response (HTTP)

#[derive(JsLifetime)]
pub(crate) struct MsgObj<'js> {
    shown: Rc<Shown>,
    response: bool,
    common: Common<'js>,
    slots: RefCell<MsgSlots<'js>>,
    /// `headers`, once made plain.
    plain: Cell<Plain>,
}

lazy_class!(MsgObj, "HttpMessage");

/// The HTTP request or response of the item `shown` holds.
fn http_message(shown: &Shown, response: bool) -> Option<Ref<'_, HttpMessage>> {
    Ref::filter_map(shown.item.borrow(), |it| {
        if response {
            it.http_response()
        } else {
            it.http_request()
        }
    })
    .ok()
}

fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// `s` as the string of its atom: no allocation when the atom exists (is
/// pinned, or is a property name somewhere), and a string QuickJS then
/// uses as a property key without hashing it again.
fn interned<'js>(ctx: &Ctx<'js>, s: &str) -> Result<Value<'js>> {
    Ok(Atom::from_str(ctx.clone(), s)?.to_js_string()?.into_value())
}

use reassembly::dissectors::http::split_target;

/// Body text cut to `max` bytes (at a character boundary when it is
/// UTF-8), with its encoding: `""` or `"base64"`.
fn body_text(body: &[u8], max: usize) -> (String, &'static str) {
    match std::str::from_utf8(body) {
        Ok(t) => {
            let mut end = t.len().min(max);
            while end > 0 && !t.is_char_boundary(end) {
                end -= 1;
            }
            (t.get(..end).unwrap_or_default().to_owned(), "")
        }
        Err(_) => (
            reassembly::item::base64(body.get(..body.len().min(max)).unwrap_or_default()),
            "base64",
        ),
    }
}

impl<'js> MsgObj<'js> {
    fn msg(&self) -> Option<Ref<'_, HttpMessage>> {
        http_message(&self.shown, self.response)
    }

    fn common(&self) -> &Common<'js> {
        &self.common
    }

    /// Once the tree shows another item: everything cached but `headers`
    /// (which reads the cell itself) is of the old one.
    #[inline]
    fn catch_up(&self) {
        if self.common.catch_up(&self.shown) {
            drop_slots(&self.slots, !(1 << MSG_HEADERS_SLOT));
        }
    }

    /// Whether this object (`v`), held by the runtime in `holders`
    /// references, and its `headers`, if made, are untouched
    /// ([`ItemObj::keep_tree`]).
    fn untouched(&self, probe: &Probe, v: &Value<'js>, holders: i32) -> bool {
        let plain = self.plain.get();
        let mut slots = self.slots.borrow_mut();
        let Some((own, n)) = plain.own(&mut *slots, |_| self.common.env.headers_atom) else {
            return false;
        };
        let proto = &self.common.proto;
        probe.untouched_with(v, proto, holders, own.get(..n).unwrap_or_default())
            && match slots.slot(MSG_HEADERS_SLOT) {
                Some(Some(h)) => {
                    probe.untouched_with(h, proto, 1 + i32::from(plain.has(MSG_HEADERS_SLOT)), &[])
                }
                _ => true,
            }
    }

    /// Whether `headers`, if made, is plain already.
    fn all_plain(&self) -> bool {
        self.plain.get().has(MSG_HEADERS_SLOT)
            || *self.slots.borrow_mut().filled() & 1 << MSG_HEADERS_SLOT == 0
    }

    /// `headers`, once made, as a plain own property of this object
    /// (`this`); see [`ItemObj::make_plain`].
    fn make_plain(&self, this: &Object<'js>) -> Result<()> {
        let plain = self.plain.get();
        if plain.has(MSG_HEADERS_SLOT) {
            return Ok(());
        }
        let headers = match self.slots.borrow_mut().slot(MSG_HEADERS_SLOT) {
            Some(Some(h)) => h.clone(),
            _ => return Ok(()),
        };
        if let Some(next) = plain.with(MSG_HEADERS_SLOT) {
            define(this, Atom::from_str(this.ctx().clone(), REQ_KEYS[rq::HEADERS])?, headers)?;
            self.plain.set(next);
        }
        Ok(())
    }

    fn trace_slots<'a>(&self, tracer: Tracer<'a, 'js>) {
        trace_slots(&self.slots, tracer);
    }

    fn keys(&self) -> &'static [&'static str] {
        if self.response {
            &RESP_KEYS
        } else {
            &REQ_KEYS
        }
    }

    #[inline]
    fn lookup(&self, atom: &Atom<'js>) -> Option<usize> {
        if self.response {
            key_of(&self.common.env.resp_ids, atom)
        } else {
            key_of(&self.common.env.req_ids, atom)
        }
    }

    fn set_known(&self, _k: usize, _v: &Value<'js>) -> bool {
        false
    }

    fn value(
        &self,
        ctx: &Ctx<'js>,
        k: usize,
        _receiver: Option<&Value<'js>>,
    ) -> Result<Value<'js>> {
        let slot = if self.response { RESP_SLOTS.get(k) } else { REQ_SLOTS.get(k) };
        if let Some(slot) = slot.copied().flatten() {
            return cached(&self.slots, slot, || self.build(ctx, k));
        }
        self.build(ctx, k)
    }

    fn build(&self, ctx: &Ctx<'js>, k: usize) -> Result<Value<'js>> {
        let Some(m) = self.msg() else { return Ok(Value::new_undefined(ctx.clone())) };
        if self.response {
            self.build_response(ctx, &m, k)
        } else {
            self.build_request(ctx, &m, k)
        }
    }

    fn version(m: &HttpMessage) -> std::borrow::Cow<'_, str> {
        if m.http09 {
            "HTTP/0.9".into()
        } else {
            text(m.version())
        }
    }

    fn headers(&self) -> Result<Value<'js>> {
        self.common.child(&self.shown, |common| HeadersObj {
            shown: self.shown.clone(),
            response: self.response,
            common,
        })
    }

    fn build_request(&self, ctx: &Ctx<'js>, m: &HttpMessage, k: usize) -> Result<Value<'js>> {
        let target = m.target();
        Ok(match k {
            rq::METHOD => string(ctx, &text(m.method()))?,
            rq::URL => string(ctx, &text(target))?,
            rq::PATH => string(ctx, &text(split_target(target).0))?,
            rq::PATH_SEGMENTS => {
                let arr = Array::new(ctx.clone())?;
                let segs = split_target(target).0.split(|c| *c == b'/').filter(|p| !p.is_empty());
                for (i, p) in segs.enumerate() {
                    arr.set(i, text(&percent_decode(p, false)).as_ref())?;
                }
                arr.into_value()
            }
            rq::TARGET_URI => {
                let uri = match (target.starts_with(b"/"), m.header("host")) {
                    (true, Some(h)) => format!("http://{}{}", text(h), text(target)),
                    _ => text(target).into_owned(),
                };
                string(ctx, &uri)?
            }
            rq::HTTP_VERSION => string(ctx, &Self::version(m))?,
            rq::HEADERS => self.headers()?,
            rq::COOKIES => cookies(ctx, m)?,
            rq::QUERY_STRING => {
                let o = Object::new(ctx.clone())?;
                for pair in split_target(target).1.split(|c| *c == b'&').filter(|p| !p.is_empty()) {
                    let mut kv = pair.splitn(2, |c| *c == b'=');
                    let key = percent_decode(kv.next().unwrap_or_default(), true);
                    let val = percent_decode(kv.next().unwrap_or_default(), true);
                    o.set(text(&key).as_ref(), text(&val).as_ref())?;
                }
                o.into_value()
            }
            rq::HEADERS_SIZE => num(ctx, u64::from(m.headers_size)),
            rq::BODY_SIZE => num(ctx, m.body_size),
            rq::POST_DATA => {
                let o = Object::new(ctx.clone())?;
                o.set("mimeType", text(m.header("content-type").unwrap_or_default()).as_ref())?;
                o.set("text", body_text(&m.body, self.common.env.max_body).0)?;
                o.into_value()
            }
            _ => Value::new_undefined(ctx.clone()),
        })
    }

    fn build_response(&self, ctx: &Ctx<'js>, m: &HttpMessage, k: usize) -> Result<Value<'js>> {
        Ok(match k {
            rs::STATUS => num(ctx, u64::from(m.status)),
            rs::STATUS_TEXT => string(ctx, &text(m.reason()))?,
            rs::HTTP_VERSION => string(ctx, &Self::version(m))?,
            rs::HEADERS => self.headers()?,
            rs::COOKIES => cookies(ctx, m)?,
            rs::HEADERS_SIZE => num(ctx, u64::from(m.headers_size)),
            rs::BODY_SIZE => num(ctx, m.body_size),
            rs::INFO_CODE => match m.info_code {
                Some(c) => num(ctx, u64::from(c)),
                None => Value::new_null(ctx.clone()),
            },
            rs::CONTENT => {
                let (t, encoding) = body_text(&m.body, self.common.env.max_body);
                let o = Object::new(ctx.clone())?;
                o.set("encoding", encoding)?;
                o.set("mimeType", text(m.header("content-type").unwrap_or_default()).as_ref())?;
                o.set("size", num(ctx, m.content_size))?;
                o.set("text", t)?;
                o.into_value()
            }
            _ => Value::new_undefined(ctx.clone()),
        })
    }
}

fn cookies<'js>(ctx: &Ctx<'js>, m: &HttpMessage) -> Result<Value<'js>> {
    let o = Object::new(ctx.clone())?;
    let put = |pair: &[u8]| -> Result<()> {
        let mut kv = pair.splitn(2, |c| *c == b'=');
        let k = kv.next().unwrap_or_default().trim_ascii();
        if !k.is_empty() {
            o.set(text(k).as_ref(), text(kv.next().unwrap_or_default().trim_ascii()).as_ref())?;
        }
        Ok(())
    };
    for (n, v) in m.headers() {
        if m.is_request && n.eq_ignore_ascii_case(b"cookie") {
            for pair in v.split(|c| *c == b';') {
                put(pair)?;
            }
        } else if !m.is_request && n.eq_ignore_ascii_case(b"set-cookie") {
            put(v.split(|c| *c == b';').next().unwrap_or_default())?;
        }
    }
    Ok(o.into_value())
}

// ---------------------------------------------------------------------
// data.request.headers

/// Header names as captured are the keys (`for..in`, `JSON.stringify`);
/// a read matches the exact name first, then any case, so `headers.host`
/// finds `Host:`. Repeated headers are joined with `", "`.
#[derive(JsLifetime)]
pub(crate) struct HeadersObj<'js> {
    shown: Rc<Shown>,
    response: bool,
    common: Common<'js>,
}

impl<'js> Trace<'js> for HeadersObj<'js> {
    fn trace<'a>(&self, tracer: Tracer<'a, 'js>) {
        self.common.trace(tracer);
    }
}

impl<'js> HeadersObj<'js> {
    fn msg(&self) -> Option<Ref<'_, HttpMessage>> {
        http_message(&self.shown, self.response)
    }

    /// Once the tree shows another item, the names written are of the old.
    #[inline]
    fn catch_up(&self) {
        self.common.catch_up(&self.shown);
    }

    fn find(&self, ctx: &Ctx<'js>, atom: &Atom<'js>) -> Result<Option<Value<'js>>> {
        let Some(m) = self.msg() else { return Ok(None) };
        match self.common.env.with_name(ctx, atom, |exact, lower| header_value(&m, exact, lower)) {
            Some(Some(HeaderValue::One(v))) => match self.common.env.interned_value(ctx, v) {
                Some(value) => Ok(Some(value?)),
                None => Ok(Some(string(ctx, &String::from_utf8_lossy(v))?)),
            },
            Some(Some(HeaderValue::Joined(s))) => Ok(Some(string(ctx, &s)?)),
            _ => Ok(None),
        }
    }
}

/// `n` lower-cased is `lower`. Names are a few bytes: byte loops here and
/// below cost less than the calls to `memcmp` slice compares make.
#[inline]
fn folds_to(n: &[u8], lower: &[u8]) -> bool {
    n.len() == lower.len() && n.iter().zip(lower).all(|(a, b)| a.to_ascii_lowercase() == *b)
}

enum HeaderValue<'m> {
    One(&'m [u8]),
    Joined(String),
}

/// The value of header `exact` (all exact-name matches joined), else of
/// any header named so in another case. A name found once, as most are,
/// is its value whatever its case: one pass over the headers, no
/// allocation.
fn header_value<'m>(m: &'m HttpMessage, exact: &str, lower: &str) -> Option<HeaderValue<'m>> {
    let mut found = None;
    for (name, value) in m.header_spans() {
        // Most names differ in length: no byte of theirs is looked at.
        if name.1.wrapping_sub(name.0) as usize != lower.len()
            || !folds_to(m.span(name), lower.as_bytes())
        {
            continue;
        }
        if found.is_some() {
            return repeated_header_value(m, exact, lower);
        }
        found = Some(value);
    }
    found.map(|v| HeaderValue::One(m.span(v)))
}

/// `header_value` for a name found more than once.
#[inline(never)]
fn repeated_header_value<'m>(
    m: &'m HttpMessage,
    exact: &str,
    lower: &str,
) -> Option<HeaderValue<'m>> {
    fn add<'m>(found: &mut Option<HeaderValue<'m>>, v: &'m [u8]) {
        *found = Some(match found.take() {
            None => HeaderValue::One(v),
            Some(HeaderValue::One(first)) => {
                HeaderValue::Joined(format!("{}, {}", text(first), text(v)))
            }
            Some(HeaderValue::Joined(mut s)) => {
                s.push_str(", ");
                s.push_str(&text(v));
                HeaderValue::Joined(s)
            }
        });
    }
    let (mut same, mut other_case) = (None, None);
    for (name, value) in m.header_spans() {
        if name.1.wrapping_sub(name.0) as usize != lower.len() {
            continue;
        }
        let n = m.span(name);
        if !folds_to(n, lower.as_bytes()) {
            continue;
        }
        if n.iter().eq(exact.as_bytes()) {
            add(&mut same, m.span(value));
        } else {
            add(&mut other_case, m.span(value));
        }
    }
    same.or(other_case)
}

impl<'js> JsClass<'js> for HeadersObj<'js> {
    const NAME: &'static str = "HttpHeaders";
    const KIND: ClassKind = ClassKind::Exotic;
    type Mutable = Readable;

    fn constructor(_ctx: &Ctx<'js>) -> Result<Option<Constructor<'js>>> {
        Ok(None)
    }

    fn exotic_get_property(
        this: &JsCell<'js, Self>,
        ctx: &Ctx<'js>,
        atom: &Atom<'js>,
        _r: &Value<'js>,
    ) -> Result<Value<'js>> {
        let me = this.borrow();
        me.catch_up();
        match me.find(ctx, atom)? {
            Some(v) => Ok(v),
            None => me.common.proto_get(atom.clone()),
        }
    }

    fn exotic_set_property(
        this: &JsCell<'js, Self>,
        _ctx: &Ctx<'js>,
        atom: Atom<'js>,
        receiver: Value<'js>,
        value: Value<'js>,
    ) -> Result<bool> {
        let me = this.borrow();
        me.catch_up();
        me.common.write(atom, receiver, value)
    }

    fn exotic_delete_property(
        _this: &JsCell<'js, Self>,
        _ctx: &Ctx<'js>,
        _atom: Atom<'js>,
    ) -> Result<bool> {
        Ok(true)
    }

    fn exotic_has_property(
        this: &JsCell<'js, Self>,
        ctx: &Ctx<'js>,
        atom: Atom<'js>,
    ) -> Result<bool> {
        let me = this.borrow();
        me.catch_up();
        if me.common.was_written(&atom) || me.find(ctx, &atom)?.is_some() {
            return Ok(true);
        }
        me.common.proto_has(atom)
    }

    fn exotic_get_own_property(
        this: &JsCell<'js, Self>,
        ctx: &Ctx<'js>,
        atom: Atom<'js>,
    ) -> Result<Option<PropertyDescriptor<'js>>> {
        let me = this.borrow();
        me.catch_up();
        Ok(me.find(ctx, &atom)?.map(value_desc))
    }

    fn exotic_get_own_property_names(
        this: &JsCell<'js, Self>,
        ctx: &Ctx<'js>,
    ) -> Result<Vec<PropertyName<'js>>> {
        let me = this.borrow();
        let mut seen: Vec<&[u8]> = Vec::new();
        let mut out = Vec::new();
        if let Some(m) = me.msg() {
            for (n, _) in m.headers() {
                if !seen.contains(&n) {
                    seen.push(n);
                    out.push(PropertyName {
                        atom: Atom::from_str(ctx.clone(), &text(n))?,
                        is_enumerable: true,
                    });
                }
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------
// data.protocol

#[derive(JsLifetime)]
pub(crate) struct ProtocolObj<'js> {
    shown: Rc<Shown>,
    common: Common<'js>,
}

leaf_class!(ProtocolObj, "Protocol", PROTOCOL_KEYS, protocol_ids);

impl<'js> ProtocolObj<'js> {
    #[inline]
    fn catch_up(&self) {
        self.common.catch_up(&self.shown);
    }

    fn value(
        &self,
        ctx: &Ctx<'js>,
        k: usize,
        _receiver: Option<&Value<'js>>,
    ) -> Result<Value<'js>> {
        let env = &self.common.env;
        if k == 0 {
            return env.fixed_string(ctx, self.shown.item.borrow().protocol_name());
        }
        let p = self.shown.item.borrow().protocol_info();
        let cow = |c: &std::borrow::Cow<'static, str>| match c {
            std::borrow::Cow::Borrowed(s) => env.fixed_string(ctx, s),
            std::borrow::Cow::Owned(s) => string(ctx, s),
        };
        match k {
            1 => cow(&p.version),
            2 => env.fixed_string(ctx, p.abbr),
            3 => cow(&p.long_name),
            4 => env.fixed_string(ctx, p.layer4),
            5 => env.fixed_string(ctx, p.layer3),
            _ => Ok(Value::new_undefined(ctx.clone())),
        }
    }
}

// ---------------------------------------------------------------------
// info

#[derive(JsLifetime)]
pub(crate) struct PacketObj<'js> {
    info: RefCell<PacketInfo>,
    common: Common<'js>,
}

leaf_class!(PacketObj, "PacketInfo", PACKET_KEYS, packet_ids);

impl<'js> PacketObj<'js> {
    /// Rebound whole by `reuse_packet`.
    #[inline]
    fn catch_up(&self) {}

    fn value(
        &self,
        ctx: &Ctx<'js>,
        k: usize,
        _receiver: Option<&Value<'js>>,
    ) -> Result<Value<'js>> {
        let p = &*self.info.borrow();
        let ip = |a: IpAddr| string(ctx, &a.to_string());
        Ok(match k {
            0 => num(ctx, p.timestamp_ms()),
            1 => num(ctx, u64::from(p.capture_length)),
            2 => num(ctx, u64::from(p.length)),
            3 => Value::new_bool(ctx.clone(), p.truncated),
            4 => Value::new_bool(ctx.clone(), p.fragmented),
            5 => ip(p.src_ip)?,
            6 => ip(p.dst_ip)?,
            7 => num(ctx, u64::from(p.src_port)),
            8 => num(ctx, u64::from(p.dst_port)),
            9 => string(ctx, p.protocol.as_str())?,
            10 => match p.vlan {
                Some(v) => num(ctx, u64::from(v)),
                None => Value::new_null(ctx.clone()),
            },
            11 => num(ctx, u64::from(p.core)),
            _ => Value::new_undefined(ctx.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_tables_map_atom_ids_to_key_indexes() {
        let t = KeyTable::new(&[5, 300, 7]);
        assert_eq!(t.get(5), Some(0));
        assert_eq!(t.get(300), Some(1));
        assert_eq!(t.get(7), Some(2));
        assert_eq!(t.get(6), None);
        assert_eq!(t.get(301), None);
        assert_eq!(t.get(1 << 31), None);
        assert_eq!(KeyTable::new(&[]).get(0), None);
    }

    #[test]
    fn body_text_cuts_at_char_boundary() {
        assert_eq!(body_text("héllo".as_bytes(), 2), ("h".to_owned(), ""));
        assert_eq!(body_text(b"hello", 3), ("hel".to_owned(), ""));
        assert_eq!(body_text(&[0xff, 0xfe], 10).1, "base64");
    }

    #[test]
    fn splits_targets_like_request_json() {
        assert_eq!(split_target(b"/a/b?x=1"), (&b"/a/b"[..], &b"x=1"[..]));
        assert_eq!(split_target(b"http://h.com/p?q"), (&b"/p"[..], &b"q"[..]));
        assert_eq!(split_target(b"http://h.com"), (&b"/"[..], &b""[..]));
    }
}
