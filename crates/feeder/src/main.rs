//! `via6-feeder`: a BGP route feeder for benchmarks. It pre-encodes a
//! whole table (real prefixes, synthetic but realistic attributes, an
//! IPv6 next hop per RFC 8950), opens one session, sends the table as
//! fast as the receiver reads, then End-of-RIB, and can later flap part
//! of it or withdraw everything. Every step is a JSON line on stdout.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use feeder::args::{self, Args, Mode, Source, Trigger};
use feeder::error::FeederError;
use feeder::events::{self, emit, Val};
use feeder::session::{self, Session};
use feeder::signals;
use feeder::table::{self, Encoded, Flap, NextHopSpec, Select, Shape};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match args::parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("via6-feeder: {e}");
            return ExitCode::from(2);
        }
    };
    signals::install();
    match run(&args) {
        Ok(()) | Err(FeederError::Stopped) => ExitCode::SUCCESS,
        Err(e) => {
            events::error(&e.to_string());
            eprintln!("via6-feeder: {e}");
            ExitCode::from(if matches!(e, FeederError::Usage(_)) {
                2
            } else {
                1
            })
        }
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn next_hop(args: &Args) -> Result<NextHopSpec, FeederError> {
    let link_local = match (args.next_hop_ll, &args.interface) {
        (Some(ll), _) => ll,
        (None, Some(ifn)) => session::link_local_of(ifn)?,
        (None, None) if args.dry_run => Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
        (None, None) => {
            return Err(FeederError::Usage(
                "give --next-hop-ll, or a link-local --connect/--listen address with %IF".into(),
            ))
        }
    };
    Ok(NextHopSpec {
        link_local,
        global: args.next_hop_global,
        form: args.ll_form,
    })
}

/// The benchmark's steps, in order; each one emits its JSON line.
fn run(args: &Args) -> Result<(), FeederError> {
    let (enc, flap) = encode_table(args)?;
    if args.dry_run {
        return Ok(());
    }
    let s = open_session(args)?;
    send_table(&s, args, &enc)?;
    if let Some(f) = &flap {
        flap_rounds(&s, args, f)?;
    }
    if let Some(trigger) = args.withdraw {
        withdraw_all(&s, &enc, trigger)?;
    }
    finish(&s, args)
}

/// Loads the table and encodes it, and the flapped share, before the
/// session opens: the send is then timed without any encoding in it.
fn encode_table(args: &Args) -> Result<(Encoded, Option<Flap>), FeederError> {
    let t0 = Instant::now();
    let select = Select {
        ipv6: args.ipv6,
        limit: args.limit,
    };
    let prefixes = match &args.source {
        Source::Text(p) => table::load_text(p, select)?,
        Source::Mrt(p) => table::load_mrt(p, select)?,
    };
    if prefixes.is_empty() {
        return Err(FeederError::EmptyTable);
    }
    let shape = Shape {
        local_as: args.local_as,
        avoid_as: args.remote_as,
        seed: args.seed,
    };
    let groups = table::group(&prefixes, &shape);
    let nh = next_hop(args)?;
    let enc = table::encode(&groups, &nh)?;
    let flap = match args.flap {
        Some(s) => Some(table::flap(&groups, &enc, s, args.seed)?),
        None => None,
    };
    drop(prefixes);
    emit(
        "encoded",
        &[
            ("prefixes", Val::N(enc.prefixes as u64)),
            ("updates", Val::N(enc.updates as u64)),
            ("attribute_sets", Val::N(groups.len() as u64)),
            ("bytes", Val::N(enc.announce.len() as u64)),
            ("withdraw_updates", Val::N(enc.withdraw_updates as u64)),
            (
                "flap_prefixes",
                Val::N(flap.as_ref().map_or(0, |f| f.prefixes) as u64),
            ),
            ("ms", Val::F(ms_since(t0))),
        ],
    );
    Ok((enc, flap))
}

/// Connects or accepts, then brings the session to Established.
fn open_session(args: &Args) -> Result<Session, FeederError> {
    let scope = match &args.interface {
        Some(i) => session::if_index(i)?,
        None => 0,
    };
    let sa = SocketAddrV6::new(args.address, args.port, 0, scope);
    let stream = match args.mode {
        Mode::Connect => session::connect(sa, args.connect_timeout)?,
        Mode::Listen => session::accept(sa)?,
    };
    emit("connected", &[]);
    let local = session::Local {
        asn: args.local_as,
        router_id: args.router_id,
        hold_time: args.hold_time,
        remote_as: args.remote_as,
        ipv6: args.ipv6,
    };
    let s = session::establish(stream, &local)?;
    emit(
        "established",
        &[
            ("local", Val::S(&s.local_addr.to_string())),
            ("peer", Val::S(&s.peer_addr.to_string())),
            ("hold_time", Val::N(u64::from(s.hold_time))),
        ],
    );
    Ok(s)
}

/// The whole table and End-of-RIB, as fast as the receiver reads.
fn send_table(s: &Session, args: &Args, enc: &Encoded) -> Result<(), FeederError> {
    let t_send = Instant::now();
    s.send(&enc.announce)?;
    let mut eor = Vec::new();
    wire::end_of_rib(wire::Family::Ipv4Unicast, &mut eor);
    if args.ipv6 {
        wire::end_of_rib(wire::Family::Ipv6Unicast, &mut eor);
    }
    s.send(&eor)?;
    emit(
        "sent",
        &[
            ("updates", Val::N(enc.updates as u64)),
            ("prefixes", Val::N(enc.prefixes as u64)),
            ("bytes", Val::N(enc.announce.len() as u64)),
            ("ms", Val::F(ms_since(t_send))),
        ],
    );
    if s.wait_acked(Duration::from_secs(600)) {
        emit("acked", &[("ms", Val::F(ms_since(t_send)))]);
    }
    Ok(())
}

/// Withdraws and re-announces the flapped share, `--flap-rounds` times.
fn flap_rounds(s: &Session, args: &Args, f: &Flap) -> Result<(), FeederError> {
    for round in 1..=args.flap_rounds {
        let fields = [
            ("round", Val::N(u64::from(round))),
            ("prefixes", Val::N(f.prefixes as u64)),
        ];
        pause(s, args.flap_interval)?;
        s.send(&f.withdraw)?;
        emit("flap_withdrawn", &fields);
        pause(s, args.flap_interval)?;
        s.send(&f.announce)?;
        emit("flap_announced", &fields);
    }
    Ok(())
}

/// Withdraws the whole table once `trigger` fires.
fn withdraw_all(s: &Session, enc: &Encoded, trigger: Trigger) -> Result<(), FeederError> {
    match trigger {
        Trigger::After(d) => pause(s, d)?,
        Trigger::Signal => wait_signal(s)?,
    }
    let t = Instant::now();
    emit("withdraw_start", &[]);
    s.send(&enc.withdraw)?;
    emit(
        "withdraw_sent",
        &[
            ("updates", Val::N(enc.withdraw_updates as u64)),
            ("ms", Val::F(ms_since(t))),
        ],
    );
    if s.wait_acked(Duration::from_secs(600)) {
        emit("withdraw_acked", &[("ms", Val::F(ms_since(t)))]);
    }
    Ok(())
}

/// Holds the session until told to stop (unless `--exit`), then closes
/// it; a peer that closed first is an error.
fn finish(s: &Session, args: &Args) -> Result<(), FeederError> {
    if !args.exit {
        while !signals::stop_requested() && !s.closed.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(50));
        }
    }
    let peer_closed = s.closed.load(Ordering::SeqCst);
    s.shutdown();
    emit(
        "done",
        &[("received", Val::N(s.received.load(Ordering::Relaxed)))],
    );
    if peer_closed && !signals::stop_requested() {
        return Err(FeederError::ClosedEarly);
    }
    Ok(())
}

/// Sleeps `d`, ending early with an error if the peer goes away or we are
/// told to stop.
fn pause(s: &Session, d: Duration) -> Result<(), FeederError> {
    let start = Instant::now();
    while start.elapsed() < d {
        check_alive(s)?;
        thread::sleep(Duration::from_millis(10).min(d));
    }
    Ok(())
}

/// Waits for SIGUSR1.
fn wait_signal(s: &Session) -> Result<(), FeederError> {
    emit("waiting_for_signal", &[]);
    while !signals::take_usr1() {
        check_alive(s)?;
        thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

fn check_alive(s: &Session) -> Result<(), FeederError> {
    if signals::stop_requested() {
        return Err(FeederError::Stopped);
    }
    if s.closed.load(Ordering::SeqCst) {
        return Err(FeederError::ClosedEarly);
    }
    Ok(())
}
