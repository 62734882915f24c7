//! The one error type of config parsing: where it happened and what was wrong.

use std::fmt;
use std::path::PathBuf;

/// A config error pointing at `file:line:col` (1-based), printed as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfError {
    /// The file the error is in (as given by the caller, or the included file).
    pub file: PathBuf,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column number.
    pub col: u32,
    /// What is wrong, naming the keyword where there is one.
    pub message: String,
}

impl ConfError {
    /// Builds an error at a position.
    pub fn new(file: impl Into<PathBuf>, line: u32, col: u32, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line,
            col,
            message: message.into(),
        }
    }
}

/// `file:line:col: message`, or `file: message` for line 0 (the whole file).
fn positioned(
    f: &mut fmt::Formatter<'_>,
    file: &std::path::Path,
    (line, col): (u32, u32),
    message: &str,
) -> fmt::Result {
    if line == 0 && col == 0 {
        return write!(f, "{}: {message}", file.display());
    }
    write!(f, "{}:{line}:{col}: {message}", file.display())
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An error always names its position, 0:0 included (the whole file).
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        f.write_str(&self.message)
    }
}

/// A non-fatal remark about a config (harmless unsupported keyword, risky default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfWarning {
    /// The file the remark is about.
    pub file: PathBuf,
    /// 1-based line (0 when it concerns the whole file).
    pub line: u32,
    /// 1-based column (0 when it concerns the whole file).
    pub col: u32,
    /// The remark.
    pub message: String,
}

impl fmt::Display for ConfWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        positioned(f, &self.file, (self.line, self.col), &self.message)
    }
}

/// The message for a keyword the original program has and hasocks refuses, the same in both
/// config languages.
pub fn not_supported(keyword: &str) -> String {
    format!("keyword \"{keyword}\" is not supported by hasocks")
}
