//! Per-file counts, defined to equal the lines `bgpdump -m` prints
//! (bgpdump 1.6, as packaged by Debian): one `A` per announced prefix, one
//! `W` per withdrawn prefix, one `STATE` per state change, one `B` per RIB
//! entry.

use std::io::Read;
use std::path::Path;

use super::error::MrtError;
use super::reader::MrtReader;
use super::record::MrtRecord;

/// Counts over the records of one MRT stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MrtStats {
    /// MRT records read, of every type.
    pub records: u64,
    /// Prefixes announced by BGP4MP UPDATEs, one per prefix per message
    /// (classic NLRI and MP_REACH_NLRI, IPv4 and IPv6).
    pub announced: u64,
    /// Prefixes withdrawn, likewise (Withdrawn Routes and MP_UNREACH_NLRI).
    pub withdrawn: u64,
    /// BGP4MP state-change records.
    pub state_changes: u64,
    /// RIB entries: one per legacy TABLE_DUMP record, one per entry of a
    /// TABLE_DUMP_V2 unicast RIB record (see [`MrtStats::add`]).
    pub rib_entries: u64,
}

impl MrtStats {
    /// Adds one record to the counts.
    ///
    /// TABLE_DUMP_V2 multicast and RIB_GENERIC records count as records
    /// but add no RIB entries: bgpdump 1.6 does not print them, and these
    /// counts are defined by what it prints.
    pub fn add(&mut self, record: &MrtRecord) {
        self.records += 1;
        match record {
            MrtRecord::TableDump(_) => self.rib_entries += 1,
            MrtRecord::Rib(rib) if rib.safi == 1 => self.rib_entries += rib.entries.len() as u64,
            MrtRecord::Bgp4mpMessage(m) => {
                let c = m.prefix_counts();
                self.announced += c.announced;
                self.withdrawn += c.withdrawn;
            }
            MrtRecord::Bgp4mpStateChange(_) => self.state_changes += 1,
            MrtRecord::Rib(_)
            | MrtRecord::RibGeneric(_)
            | MrtRecord::PeerIndexTable(_)
            | MrtRecord::Unknown { .. } => {}
        }
    }

    /// The counts as one JSON object, keys in a fixed order.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"records\": {}, \"announced\": {}, \"withdrawn\": {}, \"state_changes\": {}, \"rib_entries\": {}}}",
            self.records, self.announced, self.withdrawn, self.state_changes, self.rib_entries
        )
    }
}

/// Counts a whole MRT file (gzip or plain). Fails on the first record that
/// cannot be read; [`stats_partial`] also returns what was counted before it.
pub fn stats(path: &Path) -> Result<MrtStats, MrtError> {
    match stats_partial(path) {
        (s, None) => Ok(s),
        (_, Some(e)) => Err(e),
    }
}

/// Counts an MRT file up to its end or its first bad record, and returns
/// the counts of every record before that one together with the error.
pub fn stats_partial(path: &Path) -> (MrtStats, Option<MrtError>) {
    match MrtReader::open_gz(path) {
        Ok(reader) => stats_reader(reader),
        Err(e) => (MrtStats::default(), Some(e)),
    }
}

/// As [`stats_partial`], over any record reader.
pub fn stats_reader<R: Read>(reader: MrtReader<R>) -> (MrtStats, Option<MrtError>) {
    let mut stats = MrtStats::default();
    for record in reader {
        match record {
            Ok(r) => stats.add(&r),
            Err(e) => return (stats, Some(e)),
        }
    }
    (stats, None)
}
