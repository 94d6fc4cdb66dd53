// SPDX-License-Identifier: GPL-2.0

//! What a test returns: a pass, the reference's documented failure, or a
//! failure with its reason.

/// A test that did not fail.
pub enum Verdict {
    /// It passed.
    Pass,
    /// The reference failed exactly as documented.
    Known(String),
}

/// Why a test failed, with the console lines around it.
pub struct Failure {
    /// One line.
    pub reason: String,
    /// Console excerpt.
    pub excerpt: Vec<String>,
}

impl Failure {
    /// A failure with no console to show: the setup failed, or a check
    /// on the host.
    pub fn new(reason: String) -> Self {
        Self::with_excerpt(reason, Vec::new())
    }

    /// A failure with the console lines that show it.
    pub fn with_excerpt(reason: String, excerpt: Vec<String>) -> Self {
        Self { reason, excerpt }
    }
}

/// A test's result.
pub type TestResult = Result<Verdict, Failure>;
