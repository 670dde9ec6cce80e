//! `lotus-cosigner vectors PATH...`: one line per file, a total line, non-zero exit on any
//! failure or unrecognised file.

use std::io::Write;
use std::path::PathBuf;

/// Returns true when every case of every file passed.
pub fn run(paths: &[PathBuf], verbose: bool, out: &mut impl Write) -> std::io::Result<bool> {
    let files = match vectors::collect_files(paths) {
        Ok(files) => files,
        Err(e) => {
            writeln!(out, "{}: error: {e}", e.path().display())?;
            return Ok(false);
        }
    };
    if files.is_empty() {
        writeln!(out, "error: no vector files found in the given paths")?;
        return Ok(false);
    }
    let (mut passed, mut failed, mut bad_files) = (0usize, 0usize, 0usize);
    for file in &files {
        match vectors::check_file(file) {
            Ok((_schema, report)) => {
                writeln!(
                    out,
                    "{}: {} passed, {} failed",
                    file.display(),
                    report.passed,
                    report.failed()
                )?;
                let shown = if verbose { report.failures.len() } else { 5 };
                for failure in report.failures.iter().take(shown) {
                    writeln!(out, "  FAIL {failure}")?;
                }
                if report.failures.len() > shown {
                    writeln!(
                        out,
                        "  … {} more (use --verbose)",
                        report.failures.len() - shown
                    )?;
                }
                passed += report.passed;
                failed += report.failed();
            }
            Err(e) => {
                writeln!(out, "{}: error: {e}", file.display())?;
                bad_files += 1;
            }
        }
    }
    write!(
        out,
        "total: {passed} passed, {failed} failed in {} files",
        files.len()
    )?;
    if bad_files > 0 {
        write!(out, ", {bad_files} not checked")?;
    }
    writeln!(out)?;
    Ok(failed == 0 && bad_files == 0)
}
