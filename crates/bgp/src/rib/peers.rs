//! Peers coming and going: a session that reached Established gets a
//! slot; one that ended has its paths removed a budget at a time
//! (`drain`), so a full table leaving does not stall the RIB task.

use std::sync::Arc;

use ipnet::{Ipv4Net, Ipv6Net};
use wire::Family;

use super::table::PrefixSet;
use super::{slot_prefixes, Peer, Rib};
use crate::config::PolicyRef;
use crate::events::{EstablishedSession, PeerId, PeerOutput};

/// The paths of a peer that went away, still to be removed.
pub(crate) struct Drain {
    pub(super) slot: u16,
    pub(super) v4: Vec<Ipv4Net>,
    pub(super) v6: Vec<Ipv6Net>,
    /// The session is gone: free the slot when done.
    pub(super) unmapped: bool,
}

impl Rib {
    /// A session reached Established.
    pub fn peer_up(
        &mut self,
        session: EstablishedSession,
        outbound: Option<tokio::sync::mpsc::Sender<PeerOutput>>,
    ) {
        let id = session.peer;
        if self.slots.contains_key(&id) {
            self.begin_peer_down(id);
        }
        let neighbor = self
            .neighbor_index(id, session.peer_address)
            .and_then(|i| self.config.neighbors.get(i))
            .cloned()
            .map(Arc::new);
        let peer = Peer {
            id,
            session,
            neighbor,
            received: 0,
            accepted: 0,
            eor: Vec::new(),
            closing: false,
            stale: false,
            long_lived_stale: false,
            out: Vec::new(),
            outbound,
            advertised: PrefixSet::default(),
            dirty: PrefixSet::default(),
            dump: Vec::new(),
            dump_eor: Vec::new(),
        };
        self.warn_default_deny(&peer);
        let slot = match self.peers.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.peers.push(None);
                self.peers.len() - 1
            }
        };
        if let Some(s) = self.peers.get_mut(slot) {
            *s = Some(peer);
        }
        self.slots.insert(id, slot as u16);
        if self.stale.iter().any(|s| s.peer == id) {
            self.stale_peer_returned(id, slot as u16, std::time::Instant::now());
        }
        self.initial_dump(slot as u16);
    }

    /// RFC 8212: say once per eBGP neighbour that no policy means deny.
    pub(super) fn warn_default_deny(&mut self, peer: &Peer) {
        if !peer.session.ebgp {
            return;
        }
        let (import, export) = peer
            .neighbor
            .as_ref()
            .map_or((&PolicyRef::Default, &PolicyRef::Default), |n| {
                (&n.import, &n.export)
            });
        let import_default = *import == PolicyRef::Default;
        let export_default = *export == PolicyRef::Default;
        if !(import_default || export_default) || !self.warned.insert(peer.id) {
            return;
        }
        let what = match (import_default, export_default) {
            (true, true) => {
                "no import and no export policy: nothing is accepted from it or sent to it"
            }
            (true, false) => "no import policy: nothing is accepted from it",
            _ => "no export policy: nothing is sent to it",
        };
        tracing::warn!(
            peer = %peer.session.peer_address,
            "eBGP neighbour has {what} (RFC 8212 default deny); set `import:`/`export:` \
             to accept-all or a named policy to change this"
        );
    }

    /// The session left Established: every path from it goes (RFC 4271
    /// §9.1.3 / §8.2.2). Done at once; the task uses
    /// [`Rib::begin_peer_down`] and [`Rib::drain`] to spread the work.
    pub fn peer_down(&mut self, id: PeerId) {
        self.begin_peer_down(id);
        self.drain(usize::MAX);
    }

    /// The session left Established: its paths stop being candidates now
    /// and leave the table over the next [`Rib::drain`] calls, so that a
    /// full table going away never queues a million FIB changes at once.
    /// A new session of the same peer gets a fresh slot meanwhile.
    pub fn begin_peer_down(&mut self, id: PeerId) {
        let Some(slot) = self.slots.remove(&id) else {
            return;
        };
        if let Some(peer) = self.peer_mut(slot) {
            peer.closing = true;
        }
        self.drain_families(slot, &[], true);
    }

    /// Makes `slot`'s paths ineligible and lists them for removal.
    pub(super) fn begin_drain(&mut self, slot: u16) {
        if let Some(peer) = self.peer_mut(slot) {
            peer.closing = true;
        }
        self.drain_families(slot, &[Family::Ipv4Unicast, Family::Ipv6Unicast], false);
    }

    /// Lists `slot`'s paths of `families` (of every family with
    /// `free_slot`) for removal over the next [`Rib::drain`] calls; with
    /// `free_slot` the slot is freed once they are gone.
    pub(super) fn drain_families(&mut self, slot: u16, families: &[Family], free_slot: bool) {
        let wants = |f: Family| free_slot || families.contains(&f);
        let v4 = slot_prefixes(&self.tables.v4, slot, wants(Family::Ipv4Unicast));
        let v6 = slot_prefixes(&self.tables.v6, slot, wants(Family::Ipv6Unicast));
        if let Some(d) = self.draining.iter_mut().find(|d| d.slot == slot) {
            d.v4.extend(v4);
            d.v6.extend(v6);
            d.unmapped |= free_slot;
        } else if free_slot || !v4.is_empty() || !v6.is_empty() {
            self.draining.push(Drain {
                slot,
                v4,
                v6,
                unmapped: free_slot,
            });
        }
    }

    /// Whether some peer's paths are still being removed.
    pub fn draining(&self) -> bool {
        !self.draining.is_empty()
    }

    /// Removes up to `budget` paths of peers that went away; returns how
    /// many were removed.
    pub fn drain(&mut self, budget: usize) -> usize {
        let mut done = 0;
        while done < budget {
            let Some(d) = self.draining.last_mut() else {
                break;
            };
            let slot = d.slot;
            if let Some(p) = d.v4.pop() {
                self.withdraw_one(slot, p);
            } else if let Some(p) = d.v6.pop() {
                self.withdraw_one(slot, p);
            } else {
                let unmapped = d.unmapped;
                self.draining.pop();
                if unmapped {
                    if let Some(s) = self.peers.get_mut(slot as usize) {
                        *s = None;
                    }
                }
                continue;
            }
            done += 1;
        }
        done
    }
}
