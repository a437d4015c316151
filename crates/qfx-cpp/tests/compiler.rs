//! Finding and running the compiler, with stand-in compilers written here as shell scripts:
//! a missing compiler and a broken one are told apart, and a compiler that exits 0 without
//! writing its output is an error, never a stale binary. Then the real g++, if installed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use qfx_cpp::{Build, Compiler, ErrorKind};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("qfx-cpp-compiler")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An executable shell script `dir/name` with `body`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A stand-in compiler: answers `--version`; otherwise copies `/bin/sh`-runnable `program` to
/// the path after `-o` when `writes`, and exits 0 either way.
fn fake_compiler(dir: &Path, name: &str, writes: bool) -> PathBuf {
    let compile = if writes {
        r#"while [ $# -gt 0 ]; do
  if [ "$1" = -o ]; then printf '#!/bin/sh\necho fresh\n' > "$2"; chmod +x "$2"; fi
  shift
done"#
    } else {
        "" // claims success, writes nothing
    };
    script(
        dir,
        name,
        &format!(
            "if [ \"$1\" = --version ]; then echo 'fake g++ 1.0'; exit 0; fi\n{compile}\nexit 0"
        ),
    )
}

#[track_caller]
fn probe_fails(program: &Path, kind: ErrorKind, fragments: &[&str]) {
    let err = Compiler::probe(program).unwrap_err();
    assert_eq!(err.kind, kind, "{}: {err}", program.display());
    for f in fragments {
        assert!(err.message.contains(f), "`{err}` lacks `{f}`");
    }
}

/// Held by every test: no thread of this process may fork while a script is being written
/// (the child would hold it open for writing, and running the script would fail with ETXTBSY).
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn stand_in_compilers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("fakes");
    let failing = script(
        &dir,
        "g++-failing",
        "echo 'g++: fatal: broken install' >&2\nexit 1",
    );
    let not_executable = dir.join("g++-not-executable");
    std::fs::write(&not_executable, "not a program").unwrap();
    let writes = fake_compiler(&dir, "g++-writes", true);
    let silent = fake_compiler(&dir, "g++-silent", false);

    probe_fails(
        &dir.join("g++-absent"),
        ErrorKind::NotInstalled,
        &["g++-absent", "not found"],
    );
    probe_fails(
        &failing,
        ErrorKind::Broken,
        &["installed", "--version` failed", "broken install"],
    );
    probe_fails(&not_executable, ErrorKind::Broken, &["cannot be run"]);
    let gxx = Compiler::probe(&writes).unwrap();
    assert_eq!(gxx.version(), "fake g++ 1.0");

    // Every build gets a path of its own, and the program there is the one just built.
    let source = dir.join("main.cpp");
    std::fs::write(&source, "int main() {}\n").unwrap();
    let out = dir.join("out");
    let first = Build::new(&source, &out)
        .start(&gxx)
        .unwrap()
        .finish()
        .unwrap();
    let second = Build::new(&source, &out)
        .start(&gxx)
        .unwrap()
        .finish()
        .unwrap();
    assert_ne!(first.path(), second.path());
    let said = second.run(&[], None).unwrap();
    assert_eq!(String::from_utf8_lossy(&said.stdout), "fresh\n");

    // A compiler that exits 0 without writing: an error naming what is missing, even though
    // an earlier executable of the same source is still there.
    let silent = Compiler::probe(&silent).unwrap();
    let err = Build::new(&source, &out)
        .start(&silent)
        .unwrap()
        .finish()
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Compile, "{err}");
    assert!(err.message.contains("wrote no executable"), "{err}");
    assert!(first.path().is_file(), "the earlier build is untouched");

    // The log replaces whatever has its name, a link included, and never writes through it.
    let outside = dir.join("outside.txt");
    std::fs::write(&outside, "keep me").unwrap();
    let log = dir.join("compile.log");
    std::os::unix::fs::symlink(&outside, &log).unwrap();
    let logged = Build::new(&source, &out)
        .log(&log)
        .start(&gxx)
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me");
    assert!(std::fs::symlink_metadata(&log).unwrap().is_file());
    drop(logged);

    // Dropping a program removes its file: nothing stale is left behind.
    let path = first.path().to_path_buf();
    drop(first);
    assert!(!path.exists());
}

#[test]
fn real_gxx_compiles_runs_and_reports_errors() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let gxx = match Compiler::find() {
        Ok(c) => c,
        Err(e) if e.kind == ErrorKind::NotInstalled => {
            assert!(
                std::env::var("QFX_REQUIRE_ORACLE").as_deref() != Ok("1"),
                "g++ is required (QFX_REQUIRE_ORACLE=1): {e}"
            );
            println!("SKIPPED real g++ test: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let dir = scratch("real");
    let source = dir.join("echo.cpp");
    std::fs::write(
        &source,
        "#include <cstdio>\nint main(int argc, char** argv) {\n  int c;\n  while ((c = getchar()) != EOF) putchar(c == 'a' ? 'b' : c);\n  printf(\" %s\\n\", argc > 1 ? argv[1] : \"-\");\n  return argc > 2;\n}\n",
    )
    .unwrap();
    let program = Build::new(&source, dir.join("bin"))
        .flag("-O1")
        .start(&gxx)
        .unwrap()
        .finish()
        .unwrap();
    // A large input: stdin is fed while the output is drained, so nothing stalls.
    let input = "a".repeat(1 << 20);
    let out = program
        .run(&["x".as_ref()], Some(input.as_bytes()))
        .unwrap();
    assert_eq!(out.stdout.len(), (1 << 20) + 3);
    assert!(out.stdout.starts_with(b"bbb") && out.stdout.ends_with(b" x\n"));
    let err = program
        .run(&["x".as_ref(), "fail".as_ref()], None)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Run, "{err}");

    let broken = dir.join("broken.cpp");
    std::fs::write(&broken, "int main() { return undeclared_name; }\n").unwrap();
    let log = dir.join("compile.log");
    let err = Build::new(&broken, dir.join("bin"))
        .log(&log)
        .start(&gxx)
        .unwrap()
        .finish()
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Compile, "{err}");
    assert!(err.message.contains("undeclared_name"), "{err}");
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("undeclared_name"));
}
