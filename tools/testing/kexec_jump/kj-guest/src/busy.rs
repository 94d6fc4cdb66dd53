// SPDX-License-Identifier: GPL-2.0

//! `busy`: `kexec -e` while another task holds the kexec lock gets EBUSY.
//! `race`: two `kexec -e` at once.
//!
//! A thread loads a large crash image (the kernel copies it page by page
//! with the lock held); once that thread is past its start, this one calls
//! reboot(LINUX_REBOOT_CMD_KEXEC), a little later on each attempt. With no
//! other image loaded, a call that misses the load's window gets EINVAL
//! instead, and is retried.

use crate::{physcall::Program, sys};
use std::path::Path;
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Arc,
    },
    thread,
    time::{Duration, Instant},
};

const ATTEMPTS: u32 = 5;

pub fn run(mem: u64, size: usize) -> Result<(), String> {
    let image: &'static [u8] = Box::leak(vec![0u8; size].into_boxed_slice());
    for attempt in 1..=ATTEMPTS {
        let (tx, rx) = mpsc::channel();
        let loader = thread::spawn(move || {
            tx.send(()).expect("main thread waits");
            let start = Instant::now();
            let load = sys::kexec_load_crash(mem, image);
            (load, start.elapsed())
        });
        rx.recv().map_err(|e| format!("loader thread: {e}"))?;
        thread::sleep(Duration::from_millis(u64::from(attempt * attempt)));
        let exec = sys::kexec_exec();
        let (load, took) = loader.join().map_err(|_| "loader thread panicked")?;
        println!(
            "busy: attempt {attempt}: the load took {} ms",
            took.as_millis()
        );
        load.map_err(|e| format!("crash image load: {e}"))?;
        sys::kexec_load_crash(mem, &[]).map_err(|e| format!("crash image unload: {e}"))?;
        match exec.map_err(|e| e.raw_os_error()) {
            Err(Some(16)) => {
                println!(
                    "busy: kexec -e during a load: errno 16 (attempt {attempt}); the load went on"
                );
                return Ok(());
            }
            // Too late: the load was done and nothing is loaded for kexec -e.
            Err(Some(22)) => println!("busy: attempt {attempt} missed the load"),
            other => return Err(format!("kexec -e during a load: {other:?}, want EBUSY")),
        }
    }
    Err(format!("no attempt of {ATTEMPTS} overlapped the load"))
}

/// `race`: two threads start the loaded program at once. The reboot
/// system call serializes them; the second waits there, in a sleep the
/// freezer cannot freeze, so the first one's freezer gives up (EBUSY) and
/// the second one jumps. Prints each thread's result and time, and how
/// many calls the program counted: exactly one must have happened.
pub fn race(elf: &Path, mem_min: &str, mem_max: &str) -> Result<(), String> {
    let program = Program::load(elf, mem_min, mem_max, false)?;
    // Both threads spin until both are ready, then enter the system call
    // together: the one that loses the mutex must be inside the kernel
    // before the winner freezes tasks. (A thread still in user space,
    // even asleep, freezes; both calls then jump one after the other.)
    let ready = Arc::new(AtomicUsize::new(0));
    let go = |ready: &AtomicUsize| {
        ready.fetch_add(1, Ordering::SeqCst);
        while ready.load(Ordering::SeqCst) < 2 {
            std::hint::spin_loop();
        }
    };
    let start = Instant::now();
    let theirs = Arc::clone(&ready);
    let first = thread::spawn(move || {
        go(&theirs);
        (sys::kexec_exec(), start.elapsed())
    });
    go(&ready);
    let second = (sys::kexec_exec(), start.elapsed());
    let first = first.join().map_err(|_| "first thread panicked")?;
    let show = |(r, t): &(std::io::Result<()>, Duration)| match r {
        Ok(()) => format!("jumped ({:.1} s)", t.as_secs_f64()),
        Err(e) => format!(
            "errno {} ({:.1} s)",
            e.raw_os_error().unwrap_or(0),
            t.as_secs_f64()
        ),
    };
    println!(
        "race: first {} second {} calls {}",
        show(&first),
        show(&second),
        program.counted()
    );
    Ok(())
}
