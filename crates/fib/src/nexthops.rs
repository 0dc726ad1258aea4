//! Our nexthop objects and groups in the kernel (executor side: every
//! function here may talk to netlink).
//!
//! One object per (gateway, interface), one group per ECMP hop set, ids
//! from `protocol*1000+1` up, skipping ids held by others.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use tracing::{debug, warn};

use crate::hopsets::Freed;
use crate::nl::{self, NlSocket};
use crate::routes::FastHash;
use crate::{FibConfig, FibError, Gateway};

/// Our nexthop objects, one per (gateway, interface).
/// Why a nexthop object a route needs could not be made (the route then
/// fails on its own, like a kernel refusal).
#[derive(Debug, thiserror::Error)]
pub(crate) enum NhError {
    #[error("nexthop object for {gateway}: {source}")]
    Object {
        gateway: IpAddr,
        #[source]
        source: nl::NlError,
    },
    #[error("nexthop group: {0}")]
    Group(#[source] nl::NlError),
    #[error("no free nexthop id")]
    NoFreeId,
    #[error("every next hop is down")]
    AllDown,
}

#[derive(Default)]
pub(crate) struct NhObjects {
    pub enabled: bool,
    by_hop: HashMap<Gateway, NhObj, FastHash>,
    /// Every id of ours ever seen or made (deleted at shutdown).
    ours: HashMap<u32, Gateway>,
    /// Multipath groups of our single objects, by their (sorted) hops.
    groups: HashMap<Vec<Gateway>, NhObj, FastHash>,
    /// Every group id of ours ever seen or made.
    ours_groups: HashMap<u32, Vec<Gateway>>,
    /// Ids held by others.
    taken: HashSet<u32>,
    next_id: u32,
}

#[derive(Clone, Copy)]
struct NhObj {
    id: u32,
    /// False once the kernel flushed it (link down) or a route using it
    /// failed; it is then made again before use.
    present: bool,
}

/// Dump nexthop objects: ours are reused, others' ids avoided. Kernels
/// without nexthop objects (before 5.3) answer with an error: plain routes.
pub(crate) fn load_nexthops(sock: &mut NlSocket, cfg: &FibConfig) -> Result<NhObjects, FibError> {
    let mut nh = NhObjects {
        next_id: cfg.protocol as u32 * 1000,
        ..NhObjects::default()
    };
    let mut found = Vec::new();
    match sock.dump(nl::nexthop_dump_request(), |m| {
        if m.ty == nl::RTM_NEWNEXTHOP {
            if let Some(x) = nl::parse_nexthop(m.payload) {
                found.push(x);
            }
        }
    }) {
        Ok(_) => {}
        Err(nl::NlError::Kernel(e, t)) => {
            if cfg.nexthop_objects {
                warn!(error = %nl::error_text(e, t.as_deref()), "no nexthop objects; using plain routes");
            }
            return Ok(nh);
        }
        Err(e) => return Err(e.into()),
    }
    let mut groups = Vec::new();
    for (id, proto, kind) in found {
        match kind {
            nl::NhKind::Single(h) if proto == cfg.protocol => {
                nh.ours.insert(id, h);
                nh.by_hop.entry(h).or_insert(NhObj { id, present: true });
            }
            nl::NhKind::Group(m) if proto == cfg.protocol => groups.push((id, m)),
            _ => {
                nh.taken.insert(id);
            }
        }
    }
    for (id, members) in groups {
        // Usable only if made of our own objects (as we make them).
        let hops: Option<Vec<Gateway>> = members.iter().map(|m| nh.ours.get(m).copied()).collect();
        match hops {
            Some(mut hops) => {
                hops.sort();
                nh.ours_groups.insert(id, hops.clone());
                nh.groups.entry(hops).or_insert(NhObj { id, present: true });
            }
            None => {
                nh.taken.insert(id);
            }
        }
    }
    nh.enabled = cfg.nexthop_objects;
    Ok(nh)
}

impl NhObjects {
    /// The id of our object for `hop`, made now if needed.
    /// The hops of our current object or group `id` (the one in use for
    /// those hops), if it is one.
    pub fn hops_of(&self, id: u32) -> Option<Vec<Gateway>> {
        if let Some(h) = self.ours.get(&id) {
            if self.by_hop.get(h).is_some_and(|o| o.id == id) {
                return Some(vec![*h]);
            }
        }
        let hops = self.ours_groups.get(&id)?;
        self.groups
            .get(hops)
            .is_some_and(|g| g.id == id)
            .then(|| hops.clone())
    }

    /// Add the ids of the objects a route with `hops` goes through. A
    /// route through one of our objects always uses the current one for
    /// its hops (anything else was replaced).
    pub fn ids_for(&self, hops: &[Gateway], used: &mut HashSet<u32>) {
        if let [hop] = hops {
            if let Some(o) = self.by_hop.get(hop) {
                used.insert(o.id);
            }
        } else if let Some(g) = self.groups.get(hops) {
            used.insert(g.id);
            for hop in hops {
                if let Some(o) = self.by_hop.get(hop) {
                    used.insert(o.id);
                }
            }
        }
    }

    /// Our objects and groups not in `used`, groups first (a member in
    /// use by a group cannot go before it).
    pub fn unused(&self, used: &HashSet<u32>) -> Vec<u32> {
        self.ours_groups
            .keys()
            .chain(self.ours.keys())
            .filter(|id| !used.contains(*id))
            .copied()
            .collect()
    }

    /// Someone deleted our object or group `id`: mark it to be made again
    /// and return the hops it served (their routes went with it), and
    /// whether it was a single object (groups lost it as a member).
    /// `None` if it was not current or already known gone.
    pub fn deleted(&mut self, id: u32) -> Option<(Vec<Gateway>, bool)> {
        let hops = self.hops_of(id)?;
        let present = match hops.as_slice() {
            [hop] if self.ours.contains_key(&id) => self.by_hop.get(hop).is_some_and(|o| o.present),
            _ => self.groups.get(&hops).is_some_and(|g| g.present),
        };
        if !present {
            return None;
        }
        let single = self.ours.contains_key(&id);
        self.forget(id);
        Some((hops, single))
    }

    /// Our objects and groups the kernel has (as far as we know).
    pub fn count(&self) -> usize {
        self.ours.len() + self.ours_groups.len()
    }

    pub fn ensure(
        &mut self,
        sock: &mut NlSocket,
        protocol: u8,
        hop: Gateway,
    ) -> Result<u32, NhError> {
        let reuse = match self.by_hop.get(&hop) {
            Some(o) if o.present => return Ok(o.id),
            Some(o) => Some(o.id),
            None => None,
        };
        let id = self.claim_id(
            reuse,
            |nh, id| match sock.request(nl::nexthop_request(id, protocol, &hop)) {
                // Our own object for this hop is still there.
                Err(nl::NlError::Kernel(e, _))
                    if e == libc::EEXIST && nh.ours.get(&id) == Some(&hop) =>
                {
                    Ok(())
                }
                r => r,
            },
            |source| NhError::Object {
                gateway: hop.ip(),
                source,
            },
        )?;
        self.ours.insert(id, hop);
        self.by_hop.insert(hop, NhObj { id, present: true });
        Ok(id)
    }

    /// Makes an object under a free id: `reuse` first, then fresh ones. An
    /// id the kernel already holds for someone else (EEXIST from `make`)
    /// is remembered as taken and skipped.
    fn claim_id(
        &mut self,
        mut reuse: Option<u32>,
        mut make: impl FnMut(&Self, u32) -> Result<(), nl::NlError>,
        fail: impl Fn(nl::NlError) -> NhError,
    ) -> Result<u32, NhError> {
        for _ in 0..64 {
            let id = match reuse.take() {
                Some(id) => id,
                None => self.alloc(),
            };
            match make(self, id) {
                Ok(()) => return Ok(id),
                Err(nl::NlError::Kernel(e, _)) if e == libc::EEXIST => {
                    self.taken.insert(id);
                }
                Err(e) => return Err(fail(e)),
            }
        }
        Err(NhError::NoFreeId)
    }

    /// The id of our multipath group for `hops` (sorted, two or more, all
    /// with an interface), made now if needed. Members on links that are
    /// down are left out; `refresh_groups` adds them when they return.
    pub fn ensure_group(
        &mut self,
        sock: &mut NlSocket,
        protocol: u8,
        hops: &[Gateway],
        links_down: &HashSet<u32>,
    ) -> Result<u32, NhError> {
        if let Some(g) = self.groups.get(hops) {
            if g.present {
                return Ok(g.id);
            }
        }
        let members = self.members(sock, protocol, hops, links_down)?;
        let reuse = self.groups.get(hops).map(|g| g.id);
        let id = self.claim_id(
            reuse,
            |nh, id| {
                // Our own group id may still exist with other members: replace.
                let mine = nh.ours_groups.get(&id).is_some_and(|h| h == hops);
                sock.request(nl::nexthop_group_request(mine, id, protocol, &members))
            },
            NhError::Group,
        )?;
        self.ours_groups.insert(id, hops.to_vec());
        self.groups
            .insert(hops.to_vec(), NhObj { id, present: true });
        Ok(id)
    }

    /// Member object ids for the hops whose link is up.
    fn members(
        &mut self,
        sock: &mut NlSocket,
        protocol: u8,
        hops: &[Gateway],
        links_down: &HashSet<u32>,
    ) -> Result<Vec<u32>, NhError> {
        let mut ids = Vec::with_capacity(hops.len());
        let mut last_err = None;
        for h in hops {
            if h.ifindex().is_some_and(|ix| links_down.contains(&ix)) {
                continue;
            }
            match self.ensure(sock, protocol, *h) {
                Ok(id) => ids.push(id),
                Err(e) => last_err = Some(e),
            }
        }
        if ids.is_empty() {
            return Err(last_err.unwrap_or(NhError::AllDown));
        }
        Ok(ids)
    }

    /// Re-make the member list of our groups with a hop matching `pick`
    /// (its link came back, or its object was deleted): the kernel drops a
    /// member from its groups when the member goes, and does not add it
    /// back by itself.
    pub fn refresh_groups(
        &mut self,
        sock: &mut NlSocket,
        protocol: u8,
        links_down: &HashSet<u32>,
        pick: impl Fn(&Gateway) -> bool,
    ) {
        let todo: Vec<(Vec<Gateway>, u32)> = self
            .groups
            .iter()
            .filter(|(hops, g)| g.present && hops.iter().any(&pick))
            .map(|(hops, g)| (hops.clone(), g.id))
            .collect();
        for (hops, id) in todo {
            let res = self
                .members(sock, protocol, &hops, links_down)
                .and_then(|m| {
                    sock.request(nl::nexthop_group_request(true, id, protocol, &m))
                        .map_err(NhError::Group)
                });
            if let Err(e) = res {
                warn!(id, error = %e, "cannot refresh nexthop group");
            }
        }
    }

    /// A link went down: the kernel removed our objects on it, and every
    /// group left without members.
    pub fn link_down(&mut self, ix: u32, links_down: &HashSet<u32>) {
        for (h, o) in self.by_hop.iter_mut() {
            if h.ifindex() == Some(ix) {
                o.present = false;
            }
        }
        for (hops, g) in self.groups.iter_mut() {
            if hops
                .iter()
                .all(|h| h.ifindex().is_some_and(|x| links_down.contains(&x)))
            {
                g.present = false;
            }
        }
    }

    /// Delete our object (single or group) `id` from the kernel and forget
    /// it; kept if the kernel refuses.
    pub fn remove(&mut self, sock: &mut NlSocket, id: u32) {
        match sock.request(nl::nexthop_delete_request(id)) {
            Ok(()) => {}
            Err(nl::NlError::Kernel(e, _)) if e == libc::ENOENT => {}
            Err(e) => {
                warn!(id, error = %e, "cannot remove unused nexthop object");
                return;
            }
        }
        debug!(id, "removed unused nexthop object");
        if let Some(hop) = self.ours.remove(&id) {
            if self.by_hop.get(&hop).is_some_and(|o| o.id == id) {
                self.by_hop.remove(&hop);
            }
        }
        if let Some(hops) = self.ours_groups.remove(&id) {
            if self.groups.get(&hops).is_some_and(|g| g.id == id) {
                self.groups.remove(&hops);
            }
        }
    }

    /// Delete the groups of freed hop sets, then the objects of hops no
    /// live set contains (a group goes before its members).
    pub fn remove_freed(&mut self, sock: &mut NlSocket, freed: &Freed) {
        let groups = freed.sets.iter().filter_map(|h| self.groups.get(h));
        let singles = freed.hops.iter().filter_map(|h| self.by_hop.get(h));
        let ids: Vec<u32> = groups.chain(singles).map(|o| o.id).collect();
        for id in ids {
            self.remove(sock, id);
        }
    }

    fn alloc(&mut self) -> u32 {
        loop {
            self.next_id = self.next_id.wrapping_add(1).max(1);
            let id = self.next_id;
            if !self.taken.contains(&id)
                && !self.ours.contains_key(&id)
                && !self.ours_groups.contains_key(&id)
            {
                return id;
            }
        }
    }

    /// Mark an object (single or group) as needing to be made again.
    pub fn forget(&mut self, id: u32) {
        if let Some(h) = self.ours.get(&id) {
            if let Some(o) = self.by_hop.get_mut(h) {
                o.present = false;
            }
        }
        if let Some(hops) = self.ours_groups.get(&id) {
            if let Some(g) = self.groups.get_mut(hops) {
                g.present = false;
            }
        }
    }

    /// Delete every nexthop object of ours, groups first (after our routes
    /// are gone; deleting an object also deletes routes that use it).
    pub fn remove_all(&mut self, sock: &mut NlSocket) {
        let ids: Vec<u32> = self
            .ours_groups
            .keys()
            .chain(self.ours.keys())
            .copied()
            .collect();
        for id in ids {
            match sock.request(nl::nexthop_delete_request(id)) {
                Ok(()) => {}
                Err(nl::NlError::Kernel(e, _)) if e == libc::ENOENT => {}
                Err(e) => warn!(id, error = %e, "cannot remove nexthop object"),
            }
        }
        self.ours.clear();
        self.ours_groups.clear();
        self.by_hop.clear();
        self.groups.clear();
    }
}
