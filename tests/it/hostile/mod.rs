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
