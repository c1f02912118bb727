//! WebSocket (RFC 6455): the messages of a connection an HTTP/1.1 `101
//! Switching Protocols` handed over (`Dissector::handover` from HTTP), or
//! one picked up after its handshake (a content probe on whole frames).
//!
//! `parser.rs` reads frame headers, unmasks, reads close payloads and
//! probes; `websocket.rs` holds a flow's session: frames joined into
//! messages per direction (fragmentation, control frames interleaved),
//! payloads unmasked and inflated (permessage-deflate, RFC 7692) into a
//! bounded buffer, pings paired with pongs and a close with the close that
//! answers it. This file has the Rust values and their JSON.
//!
//! Fields (one item per message; a client's message is the `request`, a
//! server's the `response`, the other side `null`; a ping and its pong, and
//! a close and the close answering it, are one item):
//! - `{opcode, fromClient, masked, mask, frames, size, payloadSize,
//!   payload, payloadEncoding, truncated, compressed, closeCode,
//!   closeCodeName, closeReason, handshake}` — `opcode` `text`, `binary`,
//!   `ping`, `pong`, `close` (or `continuation` for the rest of a message
//!   whose start was not seen); `mask` the first frame's masking key as a
//!   number (Suricata's `websocket.mask`); `frames` how many frames the
//!   message took; `size` the payload bytes on the wire, `payloadSize`
//!   after inflating (the same when not compressed); `payload` the first
//!   `max_body_bytes` of it (UTF-8 for text, `payloadEncoding: "base64"`
//!   otherwise), `truncated` when cut there; `compressed` RSV1 under
//!   permessage-deflate; a close's `closeCode` (1000 …), its name and the
//!   reason text; `handshake` the upgrade's `{host, path, userAgent,
//!   origin, subprotocol, clientProtocols, clientExtensions,
//!   serverExtensions, acceptValid}` (`null` when the connection was picked
//!   up after it).

pub mod parser;
// The Suricata layout names the stateful file after the protocol.
#[allow(clippy::module_inception)]
pub mod websocket;

use std::sync::Arc;

pub use websocket::WsSession;

use serde_json::{json, Value};

use super::http::HttpMessage;

crate::protocol_errors! { Websocket;
    /// A reserved opcode (3–7, 11–15): the direction stops.
    Opcode => "websocket_opcode",
    /// A 64-bit payload length with its top bit set: the direction stops.
    Length => "websocket_length",
    /// A control frame fragmented or longer than 125 bytes: the direction stops.
    Control => "websocket_control",
    /// A close payload of one byte.
    Close => "websocket_close_malformed",
    /// A close code no endpoint may send (0–999, 1004–1006, 1015–2999, 5000+).
    CloseCode => "websocket_close_code",
    /// A continuation frame with no message started, or a new data frame
    /// inside a fragmented message.
    Continuation => "websocket_continuation",
    /// A whole text message that is not UTF-8.
    Utf8 => "websocket_utf8",
    /// A message of more than `max_websocket_fragments` frames: emitted
    /// there, the rest follows as a `continuation` message.
    FragmentFlood => "websocket_fragment_flood",
    /// A compressed message that does not inflate (or past
    /// `max_decompressed_bytes`): its payload is not shown.
    Decompression => "websocket_decompression",
    /// A client frame without a mask, or a server frame with one; or RSV2/RSV3.
    Framing => "websocket_framing",
}

/// What the upgrade said (the HTTP request and its `101`), shared by every
/// message of the connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WsHandshake {
    pub host: Option<String>,
    pub path: String,
    pub user_agent: Option<String>,
    pub origin: Option<String>,
    /// The server's `Sec-WebSocket-Protocol`.
    pub subprotocol: Option<String>,
    /// The client's `Sec-WebSocket-Protocol` list.
    pub client_protocols: Vec<String>,
    pub client_extensions: Option<String>,
    pub server_extensions: Option<String>,
    /// `Sec-WebSocket-Accept` is the hash of the client's key (§4.2.2);
    /// `None` when either header is missing.
    pub accept_valid: Option<bool>,
}

impl WsHandshake {
    /// permessage-deflate agreed (RFC 7692): the server's answer names it.
    pub fn deflate(&self) -> bool {
        self.server_extensions
            .as_deref()
            .is_some_and(|e| e.split(',').any(|x| x.trim_start().starts_with("permessage-deflate")))
    }

    /// Whether the sender resets its compression context per message
    /// (`client_no_context_takeover` / `server_no_context_takeover`).
    pub fn no_context_takeover(&self, client: bool) -> bool {
        let p = if client { "client_no_context_takeover" } else { "server_no_context_takeover" };
        self.server_extensions.as_deref().is_some_and(|e| e.contains(p))
    }
}

/// The GUID `Sec-WebSocket-Accept` hashes with the client's key (§1.3).
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The handshake of an upgrade: the client's request and the `101`.
pub fn handshake(req: &HttpMessage, resp: &HttpMessage) -> WsHandshake {
    use sha1::Digest;
    let text = |m: &HttpMessage, name: &str| {
        m.header(name).map(|v| String::from_utf8_lossy(v).trim().to_string())
    };
    let accept_valid = match (text(req, "sec-websocket-key"), text(resp, "sec-websocket-accept")) {
        (Some(key), Some(accept)) => {
            let digest = sha1::Sha1::digest(format!("{key}{ACCEPT_GUID}").as_bytes());
            Some(crate::item::base64(&digest) == accept)
        }
        _ => None,
    };
    WsHandshake {
        host: text(req, "host"),
        path: String::from_utf8_lossy(req.target()).into_owned(),
        user_agent: text(req, "user-agent"),
        origin: text(req, "origin"),
        subprotocol: text(resp, "sec-websocket-protocol"),
        client_protocols: text(req, "sec-websocket-protocol")
            .map(|v| v.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
            .unwrap_or_default(),
        client_extensions: text(req, "sec-websocket-extensions"),
        server_extensions: text(resp, "sec-websocket-extensions"),
        accept_valid,
    }
}

/// One message (its frames joined).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WsMessage {
    pub from_client: bool,
    pub opcode: u8,
    pub mask: Option<u32>,
    pub frames: u32,
    pub size: u64,
    pub payload_size: u64,
    pub payload: Vec<u8>,
    pub compressed: bool,
    pub close_code: Option<u16>,
    pub close_reason: Option<String>,
    pub handshake: Option<Arc<WsHandshake>>,
}

fn handshake_json(h: &WsHandshake) -> Value {
    json!({
        "host": h.host,
        "path": h.path,
        "userAgent": h.user_agent,
        "origin": h.origin,
        "subprotocol": h.subprotocol,
        "clientProtocols": h.client_protocols,
        "clientExtensions": h.client_extensions,
        "serverExtensions": h.server_extensions,
        "acceptValid": h.accept_valid,
    })
}

pub fn message_json(m: &WsMessage) -> Value {
    let (payload, encoding) =
        if m.opcode == parser::opcode::TEXT || m.opcode == parser::opcode::CLOSE {
            (String::from_utf8_lossy(&m.payload).into_owned(), "utf8")
        } else {
            match std::str::from_utf8(&m.payload) {
                Ok(s) if m.opcode != parser::opcode::BINARY => (s.to_string(), "utf8"),
                _ => (crate::item::base64(&m.payload), "base64"),
            }
        };
    json!({
        "opcode": parser::opcode_name(m.opcode),
        "fromClient": m.from_client,
        "masked": m.mask.is_some(),
        "mask": m.mask,
        "frames": m.frames,
        "size": m.size,
        "payloadSize": m.payload_size,
        "payload": payload,
        "payloadEncoding": encoding,
        "truncated": (m.payload.len() as u64) < m.payload_size,
        "compressed": m.compressed,
        "closeCode": m.close_code,
        "closeCodeName": m.close_code.and_then(parser::close_code_name),
        "closeReason": m.close_reason,
        "handshake": m.handshake.as_deref().map(handshake_json),
    })
}

/// WebSocket in the protocol registry.
pub struct Websocket;

impl super::Protocol for Websocket {
    // Kubeshark's name (KFL's `ws`); the config name is `websocket`.
    const ITEM_NAME: &'static str = "ws";
    const ABBR: &'static str = "WS";
    const VERSION: &'static str = "13";
    const LONG_NAME: &'static str = "WebSocket";
    const ERRORS: &'static [&'static str] = Error::NAMES;
    type Session = Box<WsSession>;
    type Message = Box<WsMessage>;

    fn probe(bytes: &[u8], dir: super::Direction) -> super::Confidence {
        parser::probe(bytes, dir == super::Direction::ToServer)
    }

    fn session(_tcp: bool) -> super::Session {
        super::Session::Websocket(Box::new(WsSession::new(None)))
    }
}

impl super::ProtocolMessage for WsMessage {
    fn request_json(&self) -> Value {
        message_json(self)
    }
}
