//! The protocol registry: what the rest of skua knows of a protocol, in
//! one place.
//!
//! Each protocol's folder has a marker type implementing [`Protocol`]:
//! its session and message types, its probe, how a session starts, what
//! `data.protocol` says of its items, and the names of its own anomalies.
//! One line per protocol in the `protocols!` list of
//! `dissectors/mod.rs` turns the markers into everything that used to be
//! written out per protocol: the [`AppProtocol`] enum (the config names
//! and the order probes run in), the statically dispatched `Session` and
//! `Message` enums, the per-protocol item counters and the dissection
//! error table.
//!
//! Invariants: the list order is the probe order (a probe that answers
//! `High` ends the search, so HTTP/2 and HTTP come first and protocols
//! after them cost an HTTP flow nothing); `AppProtocol as usize` indexes
//! every per-protocol table; a protocol's error reasons are numbered
//! after the generic ones, in list order, so [`ErrorKind::index`] is
//! dense and fixed at compile time.

use std::borrow::Cow;

use serde_json::Value;

use super::{Confidence, Direction, Dissector, ParseCtx, ParseResult, Session};
use crate::item::Item;

/// What a protocol tells the rest of skua about itself (see the module doc).
pub trait Protocol {
    /// `data.protocol.name` of its items (KFL's protocol macro).
    const ITEM_NAME: &'static str;
    /// `data.protocol.abbr`.
    const ABBR: &'static str;
    /// `data.protocol.version` unless [`Protocol::version`] reads it from
    /// the item.
    const VERSION: &'static str;
    /// `data.protocol.longName` unless [`Protocol::long_name`] says otherwise.
    const LONG_NAME: &'static str;
    /// Names of the protocol's own anomalies (the `kind` of
    /// `skua_reassembly_dissection_errors_total`, an item's `error.msg`);
    /// see [`protocol_errors!`](crate::protocol_errors).
    const ERRORS: &'static [&'static str] = &[];
    /// Whether the TCP probe reads roles from content: a probe that does
    /// not (DNS over TCP looks the same both ways) is never tried with the
    /// roles flipped.
    const PROBE_ROLES: bool = true;

    /// The session of one flow. A protocol carried by another's session
    /// (gRPC by HTTP/2's) names [`NoSession`].
    type Session: Dissector;
    /// One side of a transaction, as an item holds it.
    type Message: ProtocolMessage;

    /// Content-based detection on a TCP stream: the first bytes of one
    /// direction (`dir` as the flow's roles say now).
    fn probe(_bytes: &[u8], _dir: Direction) -> Confidence {
        Confidence::None
    }

    /// Content-based detection of a UDP datagram.
    fn probe_datagram(_bytes: &[u8]) -> Confidence {
        Confidence::None
    }

    /// Whether a datagram that probed as this protocol was sent by the
    /// client (a DNS query) or the server (a response); `None` if it does
    /// not say, and the lower port is taken as the server's.
    fn datagram_from_client(_bytes: &[u8]) -> Option<bool> {
        None
    }

    /// A new session for a flow detected as this protocol (`tcp`: a TCP
    /// flow, else UDP).
    fn session(tcp: bool) -> Session;

    /// `data.protocol.version` of `item`.
    fn version(_item: &Item) -> Cow<'static, str> {
        Cow::Borrowed(Self::VERSION)
    }

    /// `data.protocol.longName` of `item`.
    fn long_name(_item: &Item) -> Cow<'static, str> {
        Cow::Borrowed(Self::LONG_NAME)
    }
}

/// The `request`/`response` JSON of a protocol's message.
pub trait ProtocolMessage: Clone + std::fmt::Debug + PartialEq {
    fn request_json(&self) -> Value;

    /// The same as the request's for protocols whose message says which
    /// side it is (most: a request/response enum).
    fn response_json(&self) -> Value {
        self.request_json()
    }
}

/// Large messages are boxed in `Message` (it is moved several times per
/// item); their JSON is the boxed value's.
impl<T: ProtocolMessage> ProtocolMessage for Box<T> {
    fn request_json(&self) -> Value {
        (**self).request_json()
    }

    fn response_json(&self) -> Value {
        (**self).response_json()
    }
}

/// A boxed session (a large one, so that the `Session` enum every flow
/// holds stays the size of the common ones).
impl<D: Dissector> Dissector for Box<D> {
    #[inline]
    fn parse(&mut self, b: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult {
        (**self).parse(b, dir, ctx)
    }
    fn on_gap(&mut self, dir: Direction, len: u32, ctx: &mut ParseCtx<'_>) {
        (**self).on_gap(dir, len, ctx)
    }
    fn on_end(&mut self, dir: Direction, ctx: &mut ParseCtx<'_>) {
        (**self).on_end(dir, ctx)
    }
    fn finish(&mut self, reason: super::FinishReason, ctx: &mut ParseCtx<'_>) {
        (**self).finish(reason, ctx)
    }
    fn handover(&mut self, ctx: &mut ParseCtx<'_>) -> Option<Session> {
        (**self).handover(ctx)
    }
}

/// The session of a protocol that has none of its own (gRPC rides on
/// HTTP/2's): no value of it exists.
#[derive(Debug)]
pub enum NoSession {}

impl Dissector for NoSession {
    fn parse(&mut self, _: &[u8], _: Direction, _: &mut ParseCtx<'_>) -> ParseResult {
        match *self {}
    }
    fn on_gap(&mut self, _: Direction, _: u32, _: &mut ParseCtx<'_>) {
        match *self {}
    }
    fn on_end(&mut self, _: Direction, _: &mut ParseCtx<'_>) {
        match *self {}
    }
    fn finish(&mut self, _: super::FinishReason, _: &mut ParseCtx<'_>) {
        match *self {}
    }
}

/// A protocol's own anomalies, as an enum whose variants convert into
/// [`ErrorKind`](super::ErrorKind)s counted under their names:
///
/// ```ignore
/// crate::protocol_errors! { Mysql;
///     /// A packet shorter than its fields.
///     Malformed => "mysql_malformed",
/// }
/// ```
///
/// makes `pub enum Error { Malformed }` with `Error::NAMES` (for
/// [`Protocol::ERRORS`]) and `From<Error> for ErrorKind`.
#[macro_export]
macro_rules! protocol_errors {
    ($proto:ident; $($(#[$m:meta])* $v:ident => $name:literal,)*) => {
        /// This protocol's own dissection anomalies.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Error { $($(#[$m])* $v,)* }

        impl Error {
            /// Names in variant order (`Protocol::ERRORS`).
            pub const NAMES: &'static [&'static str] = &[$($name),*];
        }

        impl From<Error> for $crate::dissectors::ErrorKind {
            fn from(e: Error) -> Self {
                $crate::dissectors::ErrorKind::protocol($crate::config::AppProtocol::$proto, e as u8)
            }
        }
    };
}

/// Generates the registry from the `protocols!` list (see the module doc).
macro_rules! protocols {
    ($($(#[$doc:meta])* $v:ident = $name:literal => $marker:ty,)*) => {
        /// Application protocols the dissectors know. Each is detected by
        /// content on any port; the config names (`reassembly.protocols`)
        /// are the snake_case names below.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum AppProtocol {
            $($(#[$doc])* #[serde(rename = $name)] $v,)*
        }

        impl AppProtocol {
            /// Every protocol, in the order probes try them.
            pub const ALL: [AppProtocol; [$($name),*].len()] = [$(AppProtocol::$v),*];
            pub const COUNT: usize = Self::ALL.len();

            /// The config name (`reassembly.protocols`).
            pub fn name(self) -> &'static str {
                match self { $(AppProtocol::$v => $name,)* }
            }

            /// `data.protocol.name` of its items.
            pub fn item_name(self) -> &'static str {
                match self { $(AppProtocol::$v => <$marker as Protocol>::ITEM_NAME,)* }
            }

            pub fn abbr(self) -> &'static str {
                match self { $(AppProtocol::$v => <$marker as Protocol>::ABBR,)* }
            }

            pub fn version(self, item: &Item) -> Cow<'static, str> {
                match self { $(AppProtocol::$v => <$marker as Protocol>::version(item),)* }
            }

            pub fn long_name(self, item: &Item) -> Cow<'static, str> {
                match self { $(AppProtocol::$v => <$marker as Protocol>::long_name(item),)* }
            }

            /// The protocol's own anomaly names.
            pub fn errors(self) -> &'static [&'static str] {
                match self { $(AppProtocol::$v => <$marker as Protocol>::ERRORS,)* }
            }

            /// Whether its TCP probe reads roles from content.
            pub fn probe_roles(self) -> bool {
                match self { $(AppProtocol::$v => <$marker as Protocol>::PROBE_ROLES,)* }
            }

            /// Content-based detection of a TCP flow's protocol.
            #[inline]
            pub fn probe(self, bytes: &[u8], dir: Direction) -> Confidence {
                match self { $(AppProtocol::$v => <$marker as Protocol>::probe(bytes, dir),)* }
            }

            /// Content-based detection of a UDP flow's protocol.
            pub fn probe_datagram(self, bytes: &[u8]) -> Confidence {
                match self { $(AppProtocol::$v => <$marker as Protocol>::probe_datagram(bytes),)* }
            }

            pub fn datagram_from_client(self, bytes: &[u8]) -> Option<bool> {
                match self { $(AppProtocol::$v => <$marker as Protocol>::datagram_from_client(bytes),)* }
            }
        }

        /// First index of each protocol's errors after the generic kinds.
        const ERROR_OFFSETS: [usize; AppProtocol::COUNT + 1] = {
            let lens = [$(<$marker as Protocol>::ERRORS.len()),*];
            let mut o = [0; AppProtocol::COUNT + 1];
            let mut i = 0;
            while i < lens.len() {
                o[i + 1] = o[i] + lens[i];
                i += 1;
            }
            o
        };

        /// A flow's dissector, dispatched statically.
        pub enum Session {
            $($v(<$marker as Protocol>::Session),)*
        }

        impl Session {
            /// A new session of `protocol` (`tcp`: a TCP flow, else UDP).
            pub fn new(protocol: AppProtocol, tcp: bool) -> Session {
                match protocol { $(AppProtocol::$v => <$marker as Protocol>::session(tcp),)* }
            }

            pub fn protocol(&self) -> AppProtocol {
                match self { $(Session::$v(_) => AppProtocol::$v,)* }
            }

            pub fn drive(
                &mut self,
                sb: &mut StreamBuf,
                dir: Direction,
                data: &[u8],
                max_buf: usize,
                ctx: &mut ParseCtx<'_>,
            ) {
                match self { $(Session::$v(s) => drive(s, sb, dir, data, max_buf, ctx),)* }
            }

            /// One UDP datagram (a whole message).
            pub fn datagram(&mut self, data: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) {
                match self { $(Session::$v(s) => { let _ = s.parse(data, dir, ctx); })* }
            }

            pub fn on_gap(&mut self, dir: Direction, len: u32, ctx: &mut ParseCtx<'_>) {
                match self { $(Session::$v(s) => s.on_gap(dir, len, ctx),)* }
            }

            pub fn on_end(&mut self, dir: Direction, ctx: &mut ParseCtx<'_>) {
                match self { $(Session::$v(s) => s.on_end(dir, ctx),)* }
            }

            pub fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>) {
                match self { $(Session::$v(s) => s.finish(reason, ctx),)* }
            }

            /// The session the flow continues with, when this one hands it
            /// over (see [`Dissector::handover`]).
            #[inline]
            fn take_handover(&mut self, ctx: &mut ParseCtx<'_>) -> Option<Session> {
                match self { $(Session::$v(s) => s.handover(ctx),)* }
            }
        }

        /// One side of a transaction, in its protocol's own Rust value.
        ///
        /// A message is moved several times on its way out (session,
        /// exchange queue, item), so its size is paid per item: a protocol
        /// whose message is much larger than an HTTP message boxes it (its
        /// `Protocol::Message` is a `Box`), which keeps the enum, and an
        /// exchange of two, small.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Message {
            $($v(<$marker as Protocol>::Message),)*
        }

        impl Message {
            /// The protocol an item of this message belongs to.
            pub fn protocol(&self) -> AppProtocol {
                match self { $(Message::$v(_) => AppProtocol::$v,)* }
            }

            /// The `request` JSON of this message.
            pub fn request_json(&self) -> serde_json::Value {
                match self { $(Message::$v(m) => m.request_json(),)* }
            }

            /// The `response` JSON of this message.
            pub fn response_json(&self) -> serde_json::Value {
                match self { $(Message::$v(m) => m.response_json(),)* }
            }
        }
    };
}

pub(crate) use protocols;
