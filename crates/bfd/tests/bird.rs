//! Interop with BIRD 2's BFD over a veth with link-local addresses only:
//! BIRD (`protocol bfd`, 300 ms x 3) in one namespace, [`bfd::Bfd`] in the
//! other. Both come Up with 300 ms agreed; BIRD falling silent (nftables
//! drop on its side, link up) takes our session Down by detection time,
//! and our AdminDown takes BIRD's Down. Needs root, iproute2, nftables
//! and BIRD 2 (`bird`, `birdc`); fails loudly without.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bfd::{Diag, State};
use common::*;

/// BIRD running in a namespace; killed and its files removed on drop.
struct Bird {
    child: Child,
    dir: PathBuf,
    sock: String,
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bird {
    fn start(ns: &str) -> Bird {
        let dir = std::env::temp_dir().join(format!("bfd-bird-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let conf = dir.join("bird.conf");
        let body = format!(
            "router id 192.0.2.2;\n\
             protocol device {{}}\n\
             protocol bfd bfd1 {{\n\
               interface \"vb\" {{ min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }};\n\
               neighbor {A_LL} dev \"vb\" local {B_LL};\n\
             }}\n"
        );
        std::fs::write(&conf, body).unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        let conf = conf.to_string_lossy().into_owned();
        let sock = dir.join("bird.ctl").to_string_lossy().into_owned();
        sh(&["bird", "-p", "-c", &conf]);
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "bird", "-f", "-c", &conf, "-s", &sock])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("bird: {e} (is BIRD 2 installed?)"));
        let bird = Bird { child, dir, sock };
        let t = Instant::now();
        while Command::new("birdc")
            .args(["-s", &bird.sock, "show", "status"])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            assert!(t.elapsed() < Duration::from_secs(10), "BIRD did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        bird
    }

    /// BIRD's line for our session: state, interval, timeout.
    fn session(&self) -> Option<(String, String, String)> {
        let out = sh(&["birdc", "-s", &self.sock, "show", "bfd", "sessions"]);
        out.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&A_LL.to_string().as_str()) && f.len() >= 6)
                .then(|| (f[2].to_string(), f[4].to_string(), f[5].to_string()))
        })
    }

    /// Waits until BIRD shows our session in `state`; how long it took.
    async fn wait(&self, state: &str, limit: Duration) -> Duration {
        let t = Instant::now();
        loop {
            if self.session().is_some_and(|s| s.0 == state) {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < limit,
                "BIRD: not {state} within {limit:?}: {:?}",
                self.session()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[test]
fn bird_comes_up_and_each_side_sees_the_other_go() {
    sh(&["nft", "--version"]);
    sh(&["bird", "--version"]);
    let (_guard, a, b) = two_hosts("bfdbird");
    let bird = Bird::start(&b);
    let (bfd_a, mut ch) = bfd_in(&a);
    let rt = runtime();
    rt.block_on(async {
        let t0 = Instant::now();
        let key = add_a_to_b(&bfd_a).await;
        let (_, up) = wait_state(&mut ch, State::Up, t0, Duration::from_secs(10)).await;
        bird.wait("Up", Duration::from_secs(5)).await;
        eprintln!("up with BIRD after {up:?}");
        // Both Poll sequences done: BIRD shows 300 ms interval, 900 ms timeout.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let seen = bird
            .session()
            .unwrap_or_else(|| panic!("BIRD lost the session"));
        assert_eq!(
            (seen.1.as_str(), seen.2.as_str()),
            ("0.300", "0.900"),
            "{seen:?}"
        );
        let ours = bfd_a.sessions().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ours[0].detection_time, Duration::from_millis(900));
        assert_eq!(ours[0].remote_state, State::Up);

        // BIRD falls silent; the link stays up.
        silence_bfd(&b);
        let dropped = Instant::now();
        let (down, took) = wait_state(&mut ch, State::Down, dropped, Duration::from_secs(5)).await;
        eprintln!("BIRD silent: down after {took:?}");
        assert_eq!(down.diag, Diag::ControlDetectionTimeExpired);
        assert!(took <= Duration::from_millis(1000), "{took:?}");
        unsilence_bfd(&b);
        let back = Instant::now();
        wait_state(&mut ch, State::Up, back, Duration::from_secs(10)).await;
        bird.wait("Up", Duration::from_secs(5)).await;

        // We go AdminDown: BIRD must take its session down (§6.8.6).
        bfd_a
            .set_admin_down(key, true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let took = bird.wait("Down", Duration::from_secs(3)).await;
        eprintln!("our AdminDown: BIRD down after {took:?} (birdc polled every 20 ms)");
    });
    bfd_a.stop();
    drop(bird);
}
