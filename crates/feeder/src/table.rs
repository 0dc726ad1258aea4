//! The table to feed: prefixes from a text list or an MRT RIB dump, given
//! synthetic but realistic attributes, and pre-encoded into UPDATEs so
//! that sending costs nothing but `write`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::Ipv6Addr;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use wire::mrt::{MrtReader, MrtRecord};
use wire::{
    AsPath, AsSegment, CodecContext, IpNet, Ipv6NextHop, LinkLocalForm, NextHop, Origin,
    PathAttributes,
};

use crate::error::FeederError;
use crate::rng::Rng;

/// Which prefixes a source yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Select {
    /// Also take IPv6 prefixes (sent in MP_REACH for IPv6 unicast).
    pub ipv6: bool,
    /// Stop after this many distinct prefixes.
    pub limit: Option<usize>,
}

/// Collects distinct prefixes (host bits cleared) in first-seen order.
struct Collector {
    seen: HashSet<IpNet>,
    out: Vec<IpNet>,
    select: Select,
}

impl Collector {
    fn new(select: Select) -> Self {
        Collector {
            seen: HashSet::new(),
            out: Vec::new(),
            select,
        }
    }

    fn full(&self) -> bool {
        self.select.limit.is_some_and(|l| self.out.len() >= l)
    }

    fn push(&mut self, p: IpNet) {
        if self.full() || (matches!(p, IpNet::V6(_)) && !self.select.ipv6) {
            return;
        }
        let p = p.trunc();
        if self.seen.insert(p) {
            self.out.push(p);
        }
    }
}

/// Opens a file, decompressing it if it starts with the gzip magic.
fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read>, FeederError> {
    let read_err = |source| FeederError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = BufReader::new(File::open(path).map_err(read_err)?);
    let gz = file
        .fill_buf()
        .map_err(read_err)?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

/// Reads one prefix per line (CRLF or LF, blank lines and `#` comments
/// skipped), gzip or plain. Duplicates are dropped, so the count is what
/// a receiver's RIB will hold.
pub fn load_text(path: &Path, select: Select) -> Result<Vec<IpNet>, FeederError> {
    let reader = BufReader::new(open_maybe_gz(path)?);
    let mut c = Collector::new(select);
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| FeederError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let p: IpNet = text.parse().map_err(|_| FeederError::BadPrefix {
            path: path.to_path_buf(),
            line: i + 1,
            text: text.to_string(),
        })?;
        c.push(p);
        if c.full() {
            break;
        }
    }
    Ok(c.out)
}

/// Takes the prefixes of an MRT RIB dump: TABLE_DUMP_V2 RIB records
/// (RFC 6396 §4.3.2) and legacy TABLE_DUMP entries (§4.2). Unicast only;
/// BGP4MP update files are read too (their RIB records are simply absent).
pub fn load_mrt(path: &Path, select: Select) -> Result<Vec<IpNet>, FeederError> {
    let mrt_err = |source| FeederError::Mrt {
        path: path.to_path_buf(),
        source,
    };
    let reader = MrtReader::open_gz(path).map_err(mrt_err)?;
    let mut c = Collector::new(select);
    for rec in reader {
        match rec.map_err(mrt_err)? {
            MrtRecord::Rib(r) if r.safi == wire::SAFI_UNICAST => c.push(r.prefix),
            MrtRecord::TableDump(t) => c.push(t.prefix),
            _ => {}
        }
        if c.full() {
            break;
        }
    }
    Ok(c.out)
}

/// How the table's attributes are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Our AS: the first hop of every path (RFC 4271 §5.1.2, eBGP prepend).
    pub local_as: u32,
    /// Never placed in a path, so the receiver's loop check (RFC 4271
    /// §9.1.2) accepts everything.
    pub avoid_as: Option<u32>,
    pub seed: u64,
}

/// One attribute set and the prefixes that share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub attrs: PathAttributes,
    pub prefixes: Vec<IpNet>,
}

/// Path lengths 1..=7 weighted like a real table (mostly 3 to 5 hops).
const PATH_LEN_WEIGHTS: [u32; 7] = [3, 12, 28, 28, 17, 8, 4];

/// Cuts the prefix list into runs of 1 to 4 consecutive prefixes (mean
/// 2.5, as in a real table where one origin announces neighbouring
/// blocks), each run with its own attribute set: an AS path of 1 to 7
/// hops starting with `local_as`, communities on about half of them.
/// Deterministic for a given seed.
pub fn group(prefixes: &[IpNet], shape: &Shape) -> Vec<Group> {
    let mut rng = Rng::new(shape.seed);
    let mut groups = Vec::with_capacity(prefixes.len() * 2 / 5 + 1);
    let mut rest = prefixes;
    while !rest.is_empty() {
        let n = (1 + rng.below(4) as usize).min(rest.len());
        let (run, tail) = rest.split_at(n);
        rest = tail;
        groups.push(Group {
            attrs: attributes(&mut rng, shape),
            prefixes: run.to_vec(),
        });
    }
    groups
}

/// A plausible public ASN (2-octet mostly, some 4-octet), never
/// `avoid`.
fn random_asn(rng: &mut Rng, avoid: Option<u32>) -> u32 {
    loop {
        let asn = if rng.below(5) == 0 {
            131_072 + rng.below(270_000) as u32
        } else {
            1 + rng.below(64_000) as u32
        };
        if Some(asn) != avoid {
            return asn;
        }
    }
}

fn attributes(rng: &mut Rng, shape: &Shape) -> PathAttributes {
    let total: u32 = PATH_LEN_WEIGHTS.iter().sum();
    let mut pick = rng.below(u64::from(total)) as u32;
    let mut hops = 1;
    for (i, w) in PATH_LEN_WEIGHTS.iter().enumerate() {
        if pick < *w {
            hops = i + 1;
            break;
        }
        pick -= w;
    }
    let mut path = Vec::with_capacity(hops);
    path.push(shape.local_as);
    while path.len() < hops {
        path.push(random_asn(rng, shape.avoid_as));
    }
    let mut communities = Vec::new();
    if rng.below(2) == 0 {
        let tag = shape.local_as.min(u32::from(u16::MAX)) << 16;
        for _ in 0..1 + rng.below(4) {
            communities.push(tag | rng.below(1000) as u32);
        }
    }
    PathAttributes {
        origin: Some(if rng.below(10) == 0 {
            Origin::Incomplete
        } else {
            Origin::Igp
        }),
        as_path: Some(AsPath {
            segments: vec![AsSegment::Sequence(path)],
        }),
        med: (rng.below(4) == 0).then(|| rng.below(200) as u32),
        communities,
        ..PathAttributes::default()
    }
}

/// The next hop every prefix carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHopSpec {
    pub link_local: Ipv6Addr,
    /// `[global, LL]` when set, else the link-local-only form.
    pub global: Option<Ipv6Addr>,
    pub form: LinkLocalForm,
}

impl NextHopSpec {
    fn next_hop(&self) -> NextHop {
        NextHop::V6(Ipv6NextHop {
            global: self.global,
            link_local: Some(self.link_local),
        })
    }
}

/// The codec context the table is encoded for: 4-octet AS and RFC 8950
/// for IPv4, 4096-byte messages. The session refuses a peer that does not
/// negotiate these.
pub fn context() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        extended_message: false,
        extended_next_hop_ipv4: true,
    }
}

/// A pre-encoded table: the announcement bytes of every group back to
/// back, where each group's bytes start, and the withdraw-all bytes.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub announce: Vec<u8>,
    /// `offsets[i]..offsets[i + 1]` are group `i`'s UPDATEs.
    pub offsets: Vec<usize>,
    pub updates: usize,
    pub prefixes: usize,
    pub withdraw: Vec<u8>,
    pub withdraw_updates: usize,
}

/// Encodes every group, then the withdrawal of every prefix.
pub fn encode(groups: &[Group], nh: &NextHopSpec) -> Result<Encoded, FeederError> {
    let ctx = context();
    let mut announce = Vec::with_capacity(groups.len() * 120);
    let mut offsets = Vec::with_capacity(groups.len() + 1);
    let mut updates = 0;
    let mut prefixes = 0;
    for g in groups {
        offsets.push(announce.len());
        updates += wire::pack_announcements(
            &g.attrs,
            nh.next_hop(),
            nh.form,
            &g.prefixes,
            &ctx,
            &mut announce,
        )?;
        prefixes += g.prefixes.len();
    }
    offsets.push(announce.len());
    let all: Vec<IpNet> = groups.iter().flat_map(|g| g.prefixes.clone()).collect();
    let mut withdraw = Vec::new();
    let withdraw_updates = wire::pack_withdrawals(&all, &ctx, &mut withdraw)?;
    Ok(Encoded {
        announce,
        offsets,
        updates,
        prefixes,
        withdraw,
        withdraw_updates,
    })
}

/// A share of the table to flap: whole groups, so that re-announcing them
/// is a copy of their pre-encoded bytes.
#[derive(Debug, Clone)]
pub struct Flap {
    pub withdraw: Vec<u8>,
    pub announce: Vec<u8>,
    pub prefixes: usize,
}

/// Picks about `share` (0..=1) of the groups, deterministically from
/// `seed`, and encodes their withdrawal and re-announcement.
pub fn flap(groups: &[Group], enc: &Encoded, share: f64, seed: u64) -> Result<Flap, FeederError> {
    let mut rng = Rng::new(seed ^ 0x666c_6170);
    let threshold = (share.clamp(0.0, 1.0) * 1_000_000.0) as u64;
    let mut prefixes = Vec::new();
    let mut announce = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        if rng.below(1_000_000) >= threshold {
            continue;
        }
        if let (Some(&a), Some(&b)) = (enc.offsets.get(i), enc.offsets.get(i + 1)) {
            announce.extend_from_slice(enc.announce.get(a..b).unwrap_or(&[]));
        }
        prefixes.extend_from_slice(&g.prefixes);
    }
    let mut withdraw = Vec::new();
    wire::pack_withdrawals(&prefixes, &context(), &mut withdraw)?;
    Ok(Flap {
        withdraw,
        announce,
        prefixes: prefixes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use wire::{decode_message, frame_length, Message, MpNextHop};

    fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("feeder-test-{}-{name}", std::process::id()));
        let mut f = File::create(&dir).unwrap();
        f.write_all(bytes).unwrap();
        dir
    }

    const ALL: Select = Select {
        ipv6: false,
        limit: None,
    };

    #[test]
    fn text_skips_ipv6_and_duplicates_and_handles_crlf() {
        let p = temp_file(
            "a.txt",
            b"1.0.0.0/24\r\n2001:db8::/32\r\n1.0.0.0/24\r\n\r\n10.1.2.3/8\r\n",
        );
        let got = load_text(&p, ALL).unwrap();
        std::fs::remove_file(&p).unwrap();
        let want: Vec<IpNet> = vec!["1.0.0.0/24".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        assert_eq!(got, want);
    }

    #[test]
    fn text_reads_gzip_and_honours_limit_and_ipv6() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"2001:db8::/32\n1.0.0.0/24\n2.0.0.0/16\n")
            .unwrap();
        let p = temp_file("b.gz", &gz.finish().unwrap());
        let sel = Select {
            ipv6: true,
            limit: Some(2),
        };
        let got = load_text(&p, sel).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(got.len(), 2);
        assert!(matches!(got[0], IpNet::V6(_)));
    }

    #[test]
    fn text_names_the_bad_line() {
        let p = temp_file("c.txt", b"1.0.0.0/24\nnot-a-prefix\n");
        let err = load_text(&p, ALL).unwrap_err();
        std::fs::remove_file(&p).unwrap();
        assert!(
            matches!(err, FeederError::BadPrefix { line: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn mrt_rib_dump_yields_its_prefixes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/mrt/bview.20020722.2337.gz");
        let got = load_mrt(
            &path,
            Select {
                ipv6: false,
                limit: Some(1000),
            },
        )
        .unwrap();
        assert_eq!(got.len(), 1000);
        let distinct: HashSet<_> = got.iter().collect();
        assert_eq!(distinct.len(), 1000);
    }

    fn prefixes(n: u32) -> Vec<IpNet> {
        (0..n)
            .map(|i| IpNet::V4(wire::Ipv4Net::new((0x0a00_0000 + (i << 8)).into(), 24).unwrap()))
            .collect()
    }

    const SHAPE: Shape = Shape {
        local_as: 65001,
        avoid_as: Some(65002),
        seed: 7,
    };

    #[test]
    fn groups_have_the_promised_diversity() {
        let ps = prefixes(100_000);
        let gs = group(&ps, &SHAPE);
        let per_group = ps.len() as f64 / gs.len() as f64;
        assert!((2.4..2.6).contains(&per_group), "{per_group}");
        let with_comm = gs
            .iter()
            .filter(|g| !g.attrs.communities.is_empty())
            .count();
        let share = with_comm as f64 / gs.len() as f64;
        assert!((0.45..0.55).contains(&share), "{share}");
        let mut lens = [0usize; 8];
        for g in &gs {
            let path = g.attrs.as_path.as_ref().unwrap();
            assert_eq!(path.first_asn(), Some(65001));
            let AsSegment::Sequence(v) = &path.segments[0] else {
                panic!("not a sequence")
            };
            assert!(!v.contains(&65002));
            lens[path.length()] += 1;
        }
        assert_eq!(lens[0], 0);
        assert!(lens[1..=7].iter().all(|&n| n > 0), "{lens:?}");
        let flat: Vec<IpNet> = gs.iter().flat_map(|g| g.prefixes.clone()).collect();
        assert_eq!(flat, ps);
    }

    #[test]
    fn grouping_is_deterministic_per_seed() {
        let ps = prefixes(1000);
        assert_eq!(group(&ps, &SHAPE), group(&ps, &SHAPE));
        let other = Shape { seed: 8, ..SHAPE };
        assert_ne!(group(&ps, &SHAPE), group(&ps, &other));
    }

    /// Walks a byte stream of whole messages, decoding each.
    fn decode_all(mut bytes: &[u8]) -> Vec<wire::Update> {
        let ctx = context();
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let n = frame_length(bytes, &ctx).unwrap().unwrap();
            let (frame, rest) = bytes.split_at(n);
            bytes = rest;
            match decode_message(frame, &ctx).unwrap().message {
                Message::Update(u) => out.push(u),
                other => panic!("not an UPDATE: {other:?}"),
            }
        }
        out
    }

    #[test]
    fn encoded_table_decodes_to_the_same_routes_with_a_native_next_hop() {
        let ps = prefixes(5000);
        let gs = group(&ps, &SHAPE);
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        let nh = NextHopSpec {
            link_local: ll,
            global: None,
            form: LinkLocalForm::Native,
        };
        let enc = encode(&gs, &nh).unwrap();
        assert_eq!(enc.prefixes, 5000);
        assert_eq!(enc.updates, gs.len());
        let ups = decode_all(&enc.announce);
        assert_eq!(ups.len(), enc.updates);
        let mut got = Vec::new();
        for (u, g) in ups.iter().zip(&gs) {
            let mp = u.attributes.mp_reach.as_ref().unwrap();
            assert_eq!(mp.next_hop, MpNextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll));
            assert_eq!(u.attributes.as_path, g.attrs.as_path);
            assert_eq!(u.attributes.communities, g.attrs.communities);
            got.extend(mp.nlri.iter().copied());
        }
        assert_eq!(got, ps);
        let wd = decode_all(&enc.withdraw);
        assert_eq!(wd.len(), enc.withdraw_updates);
        let withdrawn: Vec<IpNet> = wd
            .iter()
            .flat_map(|u| u.withdrawn.iter().map(|n| IpNet::V4(*n)))
            .collect();
        assert_eq!(withdrawn, ps);
    }

    #[test]
    fn global_next_hop_is_sent_as_global_and_link_local() {
        let gs = group(&prefixes(10), &SHAPE);
        let nh = NextHopSpec {
            link_local: "fe80::1".parse().unwrap(),
            global: Some("2001:db8::1".parse().unwrap()),
            form: LinkLocalForm::Native,
        };
        let enc = encode(&gs, &nh).unwrap();
        let ups = decode_all(&enc.announce);
        let mp = ups[0].attributes.mp_reach.as_ref().unwrap();
        assert_eq!(
            mp.next_hop,
            MpNextHop::V6Pair("2001:db8::1".parse().unwrap(), "fe80::1".parse().unwrap())
        );
    }

    #[test]
    fn flap_takes_whole_groups_near_the_share() {
        let ps = prefixes(20_000);
        let gs = group(&ps, &SHAPE);
        let nh = NextHopSpec {
            link_local: "fe80::1".parse().unwrap(),
            global: None,
            form: LinkLocalForm::Native,
        };
        let enc = encode(&gs, &nh).unwrap();
        let f = flap(&gs, &enc, 0.1, 1).unwrap();
        let share = f.prefixes as f64 / ps.len() as f64;
        assert!((0.08..0.12).contains(&share), "{share}");
        let re: usize = decode_all(&f.announce)
            .iter()
            .map(|u| u.attributes.mp_reach.as_ref().unwrap().nlri.len())
            .sum();
        assert_eq!(re, f.prefixes);
        let wd: usize = decode_all(&f.withdraw)
            .iter()
            .map(|u| u.withdrawn.len())
            .sum();
        assert_eq!(wd, f.prefixes);
    }
}
