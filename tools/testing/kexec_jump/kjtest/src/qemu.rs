// SPDX-License-Identifier: GPL-2.0

//! One QEMU guest: its serial console, read line by line with timestamps.

use std::{
    fs::{self, File},
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

/// How to start a guest.
pub struct VmConfig {
    /// The bzImage to boot.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// The kernel command line.
    pub append: String,
    /// Number of CPUs.
    pub smp: u32,
    /// Threads per core (SMT siblings), 1 for none.
    pub threads: u32,
    /// Memory in MiB.
    pub mem_mib: u32,
    /// Disks attached as virtio-blk (/dev/vda, /dev/vdb, ...).
    pub disks: Vec<Disk>,
    /// QEMU's CPU model (`-cpu`), if not its default.
    pub cpu: Option<&'static str>,
    /// The guest's power-off stops it and QEMU stays (`-no-shutdown`),
    /// so that its memory can be saved: see [`Vm::wait_stopped`].
    pub stop_at_poweroff: bool,
}

/// A guest's disk.
pub enum Disk {
    /// A raw image file.
    File(PathBuf),
    /// The export of an NBD server on this unix socket (crate::nbd), with
    /// a write-back cache: the guest sees a volatile write cache and
    /// flushes it.
    Nbd(PathBuf),
}

/// A console line and when it arrived, since the guest started.
#[derive(Clone, Debug)]
pub struct Line {
    /// Time since QEMU started.
    pub at: Duration,
    /// The text, without line ending.
    pub text: String,
}

/// Kernel reports: a line holding one of these ends a wait at once and
/// fails the test that saw it, wherever it appears in the console. Dead or
/// dying kernels, `WARN()` splats (lockdep, suspicious RCU usage and most
/// debug checks print "WARNING:"), "BUG:" reports (KASAN, KFENCE, sleeping
/// in atomic context, soft lockups), hung tasks, RCU stalls (detected
/// by another CPU, by the stalled CPU itself, or by an expedited grace
/// period), allocation failures that warn, the OOM killer, a free page
/// found written with page poisoning on, a page table holding garbage,
/// and undefined behaviour caught by UBSAN.
pub const REPORTS: [&str; 16] = [
    "Kernel panic",
    "BUG:",
    "Oops:",
    "general protection fault",
    "WARNING:",
    "INFO: task ",
    "detected stalls",
    "self-detected stall",
    "detected expedited stalls",
    "hard LOCKUP",
    "page allocation failure",
    "invoked oom-killer",
    "Out of memory",
    "pagealloc: memory corruption",
    "Bad swap file entry",
    "UBSAN:",
];

/// The first kernel report in `lines`, if any.
pub fn first_report<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    lines
        .into_iter()
        .find(|l| REPORTS.iter().any(|r| l.contains(r)))
}

/// Whether `text` starts with a kernel message's "[    1.234567] ".
fn starts_with_stamp(text: &str) -> bool {
    let stamp = text
        .strip_prefix('[')
        .and_then(|t| t.split_once("] "))
        .and_then(|(stamp, _)| stamp.trim_start().split_once('.'));
    stamp.is_some_and(|(s, us)| {
        !s.is_empty() && us.len() == 6 && s.bytes().chain(us.bytes()).all(|b| b.is_ascii_digit())
    })
}

/// Where a kernel message starts inside `line`, after other text.
fn kernel_message_at(line: &str) -> Option<usize> {
    line.match_indices('[')
        .map(|(i, _)| i)
        .find(|&i| i > 0 && starts_with_stamp(&line[i..]))
}

/// Mends console lines that a kernel message cut: the kernel prints on
/// the serial console in the middle of a line user space is writing, so
/// "KJ: B up cpus=0-[    2.29] tsc: ..." is followed by "1 @2.29". The
/// kernel message becomes a line of its own, and the user line is whole
/// again once its rest arrives (the next line that is not a kernel
/// message).
#[derive(Default)]
struct Mender {
    cut: Option<String>,
}

impl Mender {
    fn push(&mut self, line: String) -> Vec<String> {
        let kernel = starts_with_stamp(&line);
        match self.cut.take() {
            Some(head) if kernel => {
                self.cut = Some(head);
                vec![line]
            }
            Some(head) => self.push(head + &line),
            None if kernel => vec![line],
            None => match kernel_message_at(&line) {
                Some(at) => {
                    self.cut = Some(line[..at].to_string());
                    vec![line[at..].to_string()]
                }
                None => vec![line],
            },
        }
    }

    /// The start of a cut line, whose rest has not come yet.
    fn pending(&self) -> String {
        self.cut.clone().unwrap_or_default()
    }

    /// A cut line whose rest never came.
    fn rest(&mut self) -> Option<String> {
        self.cut.take()
    }
}

/// Tells the QMP sockets of the guests one harness runs apart.
static QMP_SOCKETS: AtomicU32 = AtomicU32::new(0);

/// A running guest. Dropping it kills QEMU.
pub struct Vm {
    child: Child,
    /// QEMU's QMP socket, for the monitor's view of the vCPUs.
    qmp: PathBuf,
    /// The serial console's input.
    input: ChildStdin,
    /// What the console has shown since its last complete line (a
    /// prompt waiting for input), kernel messages that cut it left out.
    partial: Arc<Mutex<String>>,
    lines: Receiver<Line>,
    transcript: Vec<Line>,
    /// Reports that do not end a wait: a documented failure of the
    /// reference (the test runner still judges them).
    tolerated: &'static [&'static str],
}

impl Vm {
    /// Starts QEMU (TCG: KVM hangs on this machine kind) and a thread that
    /// copies its console to `log` and to the waiters.
    pub fn start(cfg: &VmConfig, log: &Path) -> Result<Vm, String> {
        // A short path: a socket's name has at most 107 bytes.
        let qmp = std::env::temp_dir().join(format!(
            "kjtest-{}-{}.qmp",
            std::process::id(),
            QMP_SOCKETS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_file(&qmp);
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-accel", "tcg", "-m", &cfg.mem_mib.to_string()])
            .args(["-smp", &format!("{},threads={}", cfg.smp, cfg.threads)])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()))
            .arg("-kernel")
            .arg(&cfg.kernel)
            .arg("-initrd")
            .arg(&cfg.initrd)
            .args(["-append", &cfg.append])
            .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
            .arg("-no-reboot");
        if let Some(cpu) = cfg.cpu {
            cmd.args(["-cpu", cpu]);
        }
        if cfg.stop_at_poweroff {
            cmd.arg("-no-shutdown");
        }
        for disk in &cfg.disks {
            cmd.arg("-drive").arg(match disk {
                Disk::File(f) => format!("file={},format=raw,if=virtio", f.display()),
                Disk::Nbd(s) => format!(
                    "driver=nbd,server.type=unix,server.path={},cache=writeback,if=virtio",
                    s.display()
                ),
            });
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("qemu-system-x86_64: {e}: run scripts/setup-toolchain.sh"))?;
        let start = Instant::now();
        let mut log = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let input = child.stdin.take().expect("piped");
        let partial = Arc::new(Mutex::new(String::new()));
        let shown = partial.clone();
        let tx2 = tx.clone();
        thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx2.send(Line {
                    at: start.elapsed(),
                    text: format!("qemu: {l}"),
                });
            }
        });
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            let mut mender = Mender::default();
            let send = |text| {
                tx.send(Line {
                    at: start.elapsed(),
                    text,
                })
                .is_ok()
            };
            // A line at a time, and what has come of the next one so far.
            loop {
                let got = match reader.fill_buf() {
                    Ok(got) if !got.is_empty() => got,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    _ => break,
                };
                let Some(end) = got.iter().position(|&b| b == b'\n') else {
                    buf.extend_from_slice(got);
                    let n = got.len();
                    reader.consume(n);
                    *shown.lock().unwrap() = mender.pending() + &String::from_utf8_lossy(&buf);
                    continue;
                };
                buf.extend_from_slice(&got[..=end]);
                reader.consume(end + 1);
                let text = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .replace('\r', "");
                let _ = writeln!(log, "{text}");
                if !mender.push(text).into_iter().all(send) {
                    return;
                }
                *shown.lock().unwrap() = mender.pending();
                buf.clear();
            }
            // A last line without its line ending.
            if !buf.is_empty() {
                let text = String::from_utf8_lossy(&buf).replace('\r', "");
                let _ = writeln!(log, "{text}");
                for l in mender.push(text) {
                    send(l);
                }
            }
            if let Some(text) = mender.rest() {
                send(text);
            }
        });
        Ok(Vm {
            child,
            qmp,
            input,
            partial,
            lines: rx,
            transcript: Vec::new(),
            tolerated: &[],
        })
    }

    /// Waits for the next line containing one of `needles`; returns which
    /// one and the line. Fails on timeout, on a kernel panic or oops, or
    /// when QEMU exits first (a triple fault with -no-reboot).
    pub fn expect_any(
        &mut self,
        needles: &[&str],
        timeout: Duration,
    ) -> Result<(usize, Line), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.transcript.push(line.clone());
                    if let Some(i) = needles.iter().position(|n| line.text.contains(n)) {
                        return Ok((i, line));
                    }
                    let tolerated = self.tolerated.iter().any(|t| line.text.contains(t));
                    if first_report([line.text.as_str()]).is_some() && !tolerated {
                        // Keep the report's trace in the log and excerpt.
                        let until = Instant::now() + Duration::from_secs(3);
                        while let Ok(l) = self
                            .lines
                            .recv_timeout(until.saturating_duration_since(Instant::now()))
                        {
                            self.transcript.push(l);
                        }
                        return Err(format!("kernel report: {}", line.text.trim()));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "timed out after {timeout:?} waiting for {needles:?}"
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                    return Err(format!("QEMU exited ({status}) before {needles:?}"));
                }
            }
        }
    }

    /// Waits for QEMU to exit (the guest powered off).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Ok(line) = self.lines.try_recv() {
                self.transcript.push(line);
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.transcript.push(line);
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("guest still running after {timeout:?}"));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the console shows `prompt`, in a line or at the end of
    /// one not finished yet (a prompt that waits for input). Fails on
    /// timeout, on a kernel report, or when QEMU exits first.
    pub fn expect_prompt(&mut self, prompt: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.partial.lock().unwrap().contains(prompt) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "timed out after {timeout:?} waiting for {prompt:?}"
                ));
            }
            match self.expect_any(&[prompt], left.min(Duration::from_millis(100))) {
                Ok(_) => return Ok(()),
                Err(e) if e.starts_with("timed out") => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Types `text` and Enter on the serial console.
    pub fn type_line(&mut self, text: &str) -> Result<(), String> {
        self.input
            .write_all(format!("{text}\n").as_bytes())
            .and_then(|_| self.input.flush())
            .map_err(|e| format!("typing on the console: {e}"))
    }

    /// Waits until a guest started with `stop_at_poweroff` has powered
    /// off (QEMU stopped it and stays).
    pub fn wait_stopped(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Ok(line) = self.lines.try_recv() {
                self.transcript.push(line);
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                return Err(format!(
                    "QEMU exited ({s}) instead of stopping at the power-off"
                ));
            }
            if self.monitor("info status", 0)?.contains("(shutdown)") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("guest still running after {timeout:?}"));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Writes the guest's first `mib` MiB of physical memory to `path`.
    pub fn save_memory(&self, mib: u32, path: &Path) -> Result<(), String> {
        let said = self.monitor(
            &format!(
                "pmemsave 0 {:#x} \"{}\"",
                u64::from(mib) << 20,
                path.display()
            ),
            0,
        )?;
        let len = fs::metadata(path).map_or(0, |m| m.len());
        if len != u64::from(mib) << 20 {
            return Err(format!(
                "pmemsave wrote {len} bytes to {}: {said}",
                path.display()
            ));
        }
        Ok(())
    }

    /// Lets reports holding one of `reports` pass without ending a wait.
    pub fn tolerate(&mut self, reports: &'static [&'static str]) {
        self.tolerated = reports;
    }

    /// Every line consumed so far.
    pub fn transcript(&self) -> &[Line] {
        &self.transcript
    }

    /// Runs `command` in QEMU's human monitor, on vCPU `cpu` (for the
    /// commands that look at one), and returns what it printed.
    pub fn monitor(&self, command: &str, cpu: u32) -> Result<String, String> {
        let err = |e: std::io::Error| format!("QMP {}: {e}", self.qmp.display());
        let stream = UnixStream::connect(&self.qmp).map_err(err)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(err)?;
        let mut out = stream.try_clone().map_err(err)?;
        let mut replies = BufReader::new(stream).lines();
        // The greeting, then one reply per command; events may come between.
        let mut reply = |request: serde_json::Value| -> Result<serde_json::Value, String> {
            writeln!(out, "{request}").map_err(err)?;
            loop {
                let line = replies
                    .next()
                    .ok_or("QMP: connection closed")?
                    .map_err(err)?;
                let v: serde_json::Value =
                    serde_json::from_str(&line).map_err(|e| format!("QMP: {e}: {line}"))?;
                if let Some(e) = v.get("error") {
                    return Err(format!("QMP: {request}: {e}"));
                }
                if let Some(r) = v.get("return") {
                    return Ok(r.clone());
                }
            }
        };
        reply(serde_json::json!({ "execute": "qmp_capabilities" }))?;
        let r = reply(serde_json::json!({
            "execute": "human-monitor-command",
            "arguments": { "command-line": command, "cpu-index": cpu },
        }))?;
        r.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("QMP: {command}: not text: {r}"))
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.qmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_lines_are_mended() {
        let mut m = Mender::default();
        let mut out = Vec::new();
        for l in [
            "KJ: B up cpus=0-[    2.291607] tsc: Refined TSC clocksource calibration: 2300.000 MHz",
            "[    2.300000] clocksource: Switched to clocksource tsc",
            "1 @2.29",
            "[    2.400000] a whole kernel line",
            "KJ: a whole user line with [brackets] in it",
            "KJ: A up code=[  123.000001] cut",
        ] {
            out.extend(m.push(l.to_string()));
        }
        out.extend(m.rest());
        assert_eq!(
            out,
            [
                "[    2.291607] tsc: Refined TSC clocksource calibration: 2300.000 MHz",
                "[    2.300000] clocksource: Switched to clocksource tsc",
                "KJ: B up cpus=0-1 @2.29",
                "[    2.400000] a whole kernel line",
                "KJ: a whole user line with [brackets] in it",
                "[  123.000001] cut",
                "KJ: A up code=",
            ]
        );
    }

    #[test]
    fn a_prompt_cut_by_a_kernel_message_stays_pending() {
        let mut m = Mender::default();
        let out = m.push("kjump: passphrase (try 1 of 3): [    3.874280] input: mouse".to_string());
        assert_eq!(out, ["[    3.874280] input: mouse"]);
        assert_eq!(m.pending(), "kjump: passphrase (try 1 of 3): ");
        assert_eq!(m.push(String::new()), ["kjump: passphrase (try 1 of 3): "]);
        assert_eq!(m.pending(), "");
    }

    #[test]
    fn reports_are_found() {
        let log = [
            "[    1.0] Run /init as init process",
            "[    2.0] WARNING: CPU: 0 PID: 1 at kernel/kexec_core.c:1 kernel_kexec+0x1/0x2",
            "[    3.0] Freezing user space processes failed after 20.013 seconds",
        ];
        assert_eq!(first_report(log), Some(log[1]));
        assert!(first_report(["rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"]).is_some());
        assert!(first_report(["rcu: INFO: rcu_preempt self-detected stall on CPU"]).is_some());
        assert!(first_report([
            "[    2.2] kexec: page allocation failure: order:0, mode:0x10cc0(GFP_KERNEL)"
        ])
        .is_some());
        assert!(
            first_report(["[    9.1] kj-guest invoked oom-killer: gfp_mask=0x140dca"]).is_some()
        );
        assert!(first_report([
            "rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: {"
        ])
        .is_some());
        assert!(
            first_report(["INFO: task kj-guest:35 blocked for more than 120 seconds."]).is_some()
        );
        assert!(
            first_report(["[    4.2] UBSAN: shift-out-of-bounds in kernel/kexec_core.c:99:5"])
                .is_some()
        );
        assert_eq!(
            first_report([log[0], log[2], "kexec_jump: exception 000000000000000e"]),
            None
        );
    }
}
