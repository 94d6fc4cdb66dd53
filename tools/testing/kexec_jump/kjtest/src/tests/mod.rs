// SPDX-License-Identifier: GPL-2.0

//! The end-to-end tests: each boots a real kernel in QEMU and checks what
//! it does. One function per behaviour; this file is their registry.

use crate::Ctx;

// The tests, by what they check.
mod basics;
mod benchmarks;
mod busy;
mod debian;
mod demo;
mod devices;
mod durability;
mod fuzz;
mod hibernate;
mod jump;
mod kjump;
mod physical;
mod sealed;
mod soak;

// What the tests share.
mod disks;
mod dump;
mod guest;
mod images;
mod kaslr;
mod trips;
mod verdict;

// What the rest of kjtest uses.
pub use demo::{demo, TIMELINE};
pub(crate) use guest::{boot_on, number_after};
pub use hibernate::bench as hibernate_bench;
pub(crate) use images::{base_image, init_script, kjump_image, with_b};
pub use physical::one_physical_call;
pub use sealed::bench as sealed_bench;
pub use verdict::{Failure, TestResult, Verdict};

/// A registered test.
pub struct TestCase {
    /// Name, after the behaviour it checks.
    pub name: &'static str,
    /// The test.
    pub run: fn(&Ctx) -> TestResult,
    /// The kernels it runs on: tests of the Rust test devices need a
    /// kernel with Rust (not `c`), tests of Rust code need ours.
    pub kernels: &'static [&'static str],
    /// The reference is documented to fail it (README): on the reference
    /// only that exact failure passes, and a pass is reported as wrong.
    pub ref_fails: bool,
    /// Kernel reports that are part of the reference's documented failure
    /// (a piece of each report line); any other report fails the test.
    pub ref_reports: &'static [&'static str],
    /// Kernel reports the test causes on purpose (a piece of each line):
    /// they neither fail it nor count as reports.
    pub injects: &'static [&'static str],
}

impl TestCase {
    /// A test of `kernels`.
    const fn new(
        name: &'static str,
        run: fn(&Ctx) -> TestResult,
        kernels: &'static [&'static str],
    ) -> Self {
        Self {
            name,
            run,
            kernels,
            ref_fails: false,
            ref_reports: &[],
            injects: &[],
        }
    }

    /// The test, which the reference is documented to fail, with
    /// `reports`.
    const fn ref_fails(self, reports: &'static [&'static str]) -> Self {
        Self {
            ref_fails: true,
            ref_reports: reports,
            ..self
        }
    }

    /// The test, which causes `reports` on purpose.
    const fn injects(self, reports: &'static [&'static str]) -> Self {
        Self {
            injects: reports,
            ..self
        }
    }
}

/// The reference's B has empty crash notes (nothing fills them at a
/// jump), so its /proc/vmcore setup asks vmalloc for 0 bytes and WARNs;
/// then its jump-back helper load takes all of B's memory, and the
/// allocation that finds none left reports it.
const REF_JUMP_REPORTS: &[&str] = &[
    "at mm/vmalloc.c:3838 __vmalloc_node_range_noprof",
    "kexec: page allocation failure",
];

/// Every kernel: ours (the Rust sequence), ours with the C sequence, the
/// reference. All three have the test devices.
const ALL: &[&str] = &["ours", "c", "ref"];
/// Only ours: the Rust code itself.
const OURS: &[&str] = &["ours"];
/// The patched kernels, with the Rust and with the C sequence.
const OURS_AND_C: &[&str] = &["ours", "c"];

/// A test named after its function, on `kernels`.
macro_rules! test {
    ($module:ident::$run:ident, $kernels:expr) => {
        TestCase::new(stringify!($run), $module::$run, $kernels)
    };
}

/// All tests, in the order they run.
pub const TESTS: &[TestCase] = &[
    test!(basics::boot_to_init, ALL),
    test!(basics::exec_without_image_is_einval, ALL),
    test!(basics::plain_kexec_reboots, ALL),
    test!(basics::kunit_suites, OURS),
    test!(basics::kselftest_kexec_jump, OURS),
    test!(jump::jump_round_trip, ALL).ref_fails(REF_JUMP_REPORTS),
    test!(jump::jump_20_round_trips, ALL).ref_fails(REF_JUMP_REPORTS),
    test!(jump::jump_round_trip_cpu_max, OURS_AND_C),
    test!(jump::jump_back_across_paging_modes_is_refused, OURS_AND_C),
    test!(jump::offline_cpus_parked_in_a_after_jump_back, OURS_AND_C),
    test!(physical::physical_mode_call_100, ALL).ref_fails(&[]),
    test!(physical::jumps_keep_no_memory, OURS_AND_C),
    test!(physical::platform_quiet_during_call, ALL).ref_fails(&[]),
    test!(physical::kjump_call_100, OURS),
    test!(physical::physical_mode_int3_returns, ALL).ref_fails(&[]),
    test!(physical::physical_mode_fault_is_reported, ALL).ref_fails(&[]),
    test!(devices::device_callbacks_in_order, ALL),
    test!(devices::failed_step_unwinds, ALL).ref_fails(&[]),
    test!(devices::freeze_failure_unwinds, ALL),
    test!(benchmarks::switch_floors, OURS),
    test!(benchmarks::ladder_floor, OURS),
    test!(hibernate::hibernate_floors, OURS),
    test!(busy::exec_during_load_is_ebusy, ALL),
    test!(busy::concurrent_exec_one_gets_ebusy, ALL),
    test!(jump::kexec_tools_new_user_recipe_10_boots, OURS),
    test!(kjump::kjump_round_trips_10_boots, OURS),
    test!(kjump::kjump_4_cpus_5_gib_reload, OURS),
    test!(fuzz::kexec_load_fuzz, OURS_AND_C),
    test!(kjump::kjump_refuses_misuse, OURS),
    test!(soak::soak_round_trips, OURS),
    test!(hibernate::hibernate_resume_round_trip, OURS),
    test!(hibernate::hibernate_refuses_bad_images, OURS),
    test!(hibernate::hibernate_device_must_be_kjumps, OURS),
    test!(hibernate::hibernate_with_full_page_cache, OURS),
    test!(hibernate::hibernate_refuses_changed_filesystem, OURS),
    test!(hibernate::hibernate_failure_in_b_keeps_a, OURS).injects(hibernate::B_PANICS),
    test!(hibernate::hibernate_power_cut_never_resumes, OURS),
    test!(durability::hibernate_volatile_cache_cuts, OURS),
    test!(durability::hibernate_io_error_keeps_a, OURS),
    test!(hibernate::hibernate_70_percent_of_ram, OURS),
    test!(sealed::hibernate_sealed_round_trip, OURS),
    test!(debian::debian_systemd_kjump_round_trip, OURS),
    test!(kjump::kjump_refused_by_reference, &["ref"]),
];
