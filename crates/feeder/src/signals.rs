//! SIGUSR1 triggers the next action (flap round or withdraw-all);
//! SIGTERM/SIGINT end the session with a Cease. The handlers only set
//! flags, which the main loop polls.

use std::sync::atomic::{AtomicBool, Ordering};

static USR1: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr1(_: libc::c_int) {
    USR1.store(true, Ordering::SeqCst);
}

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handlers (with SA_RESTART, so blocking writes resume).
pub fn install() {
    let set = |sig: libc::c_int, f: extern "C" fn(libc::c_int)| {
        // SAFETY: a zeroed sigaction is valid; the handler only touches an
        // atomic, which is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = f as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    };
    set(libc::SIGUSR1, on_usr1);
    set(libc::SIGTERM, on_stop);
    set(libc::SIGINT, on_stop);
}

/// True once after each SIGUSR1.
pub fn take_usr1() -> bool {
    USR1.swap(false, Ordering::SeqCst)
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
