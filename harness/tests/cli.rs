//! The `cdc-chaos` command's user-visible behaviour on bad input: clear errors, documented exit
//! codes, nothing started.

use std::process::Command;

fn cdc_chaos(home: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cdc-chaos"))
        .args(args)
        .env("CDC_CHAOS_HOME", home)
        .env("CDC_CHAOS_CACHE", home.join("cache"))
        .output()
        .expect("runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn temp_home(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cdcc-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn unknown_profile_is_a_setup_error_naming_the_choices() {
    let home = temp_home("profile");
    let (code, _, err) = cdc_chaos(&home, &["up", "--profile", "sturdy"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"sturdy\"") && err.contains("durable, weak"), "{err}");
    assert!(!home.join("state.json").exists(), "nothing started");
}

#[test]
fn a_bad_profile_file_names_line_and_field() {
    let home = temp_home("badfile");
    std::fs::create_dir_all(&home).unwrap();
    let file = home.join("mine.toml");
    std::fs::write(&file, "name = \"mine\"\n[topics]\nreplication_factor = 3\npartitions = \"many\"\n[processing]\nguarantee = \"at_least_once\"\n").unwrap();
    let (code, _, err) = cdc_chaos(&home, &["up", "--profile", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("mine.toml") && err.contains("line 4"), "{err}");
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn unknown_flags_are_rejected() {
    let home = temp_home("flags");
    let (code, _, err) = cdc_chaos(&home, &["up", "--profil", "durable"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--profil"), "{err}");
}

#[test]
fn status_without_a_stack_says_so() {
    let home = temp_home("status");
    let (code, out, _) = cdc_chaos(&home, &["status"]);
    assert_eq!(code, 3);
    assert!(out.contains("no stack is running"), "{out}");
    let (code, out, _) = cdc_chaos(&home, &["status", "--json"]);
    assert_eq!(code, 3);
    assert_eq!(out.trim(), "[]");
    let _ = std::fs::remove_dir_all(&home);
}
