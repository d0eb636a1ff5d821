//! `pz serve` against the real Flight SQL clients from PyPI (ADBC's driver and
//! pyarrow.flight): runs tests/python/test_flight*.py with pytest in the test environment
//! `.ci/run` makes (`.venv-test`, or `PZ_TEST_PYTHON`). They are real clients, so the test
//! does not skip when they are missing: it fails and says how to get them.

use std::path::PathBuf;
use std::process::Command;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PZ_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    workspace_root().join(".venv-test/bin/python")
}

#[test]
fn adbc_and_pyarrow_flight_clients() {
    let py = python();
    assert!(
        py.exists(),
        "{} not found: run .ci/run (or set PZ_TEST_PYTHON to a Python with tests/python/requirements.txt installed)",
        py.display()
    );
    let out = Command::new(&py)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/python/test_flight.py",
            "tests/python/test_flight_auth.py",
            "tests/python/test_flight_limits.py",
            "tests/python/test_flight_lifecycle.py",
        ])
        .current_dir(workspace_root())
        .env("PZ_BIN", env!("CARGO_BIN_EXE_pz"))
        .output()
        .expect("run pytest");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "pytest failed:\n{text}");
    assert!(text.contains(" passed"), "{text}");
    assert!(
        !text.contains("skipped"),
        "no client test may skip:\n{text}"
    );
}
