//! A hostile world, each case ending in a clear diagnostic or outcome,
//! never a panic, a leaked secret or a file written where it must not be:
//! manifests ([`manifests`]), files on disk ([`files`]), a submit server
//! that answers badly ([`answers`]), the wire and its hosts ([`wire`]),
//! and final URLs that answer anything but a song ([`downloads`]).

mod answers;
mod downloads;
mod files;
mod manifests;
mod wire;

use serde_json::{Value, json};

/// A finished task's v2 feed answer around `clips`.
fn v2(clips: Vec<Value>) -> Value {
    json!({"code": 200, "message": "success",
           "data": {"type": "SUCCESS", "request_body": {}, "response_data": clips}})
}
